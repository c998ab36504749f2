/* SPDX-License-Identifier: MIT
 * srup/present.h - identity presentation (placeholder until the presentation module lands). */
#ifndef SRUP_PRESENT_H
#define SRUP_PRESENT_H
#endif
