/* SPDX-License-Identifier: MIT
 * srup/srup.h - umbrella header for libsrup: include this one. */
#ifndef SRUP_SRUP_H
#define SRUP_SRUP_H

#include "err.h"
#include "msg.h"
#include "key.h"
#include "sig.h"
#include "envelope.h"
#include "id.h"
#include "present.h"

#endif
