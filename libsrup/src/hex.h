/* SPDX-License-Identifier: MIT
 * hex.h - the one hex-digit decoder shared inside libsrup (id.c defines it). */
#ifndef SRUP_HEX_H
#define SRUP_HEX_H

/* Value of one hex digit of either case, or -1 if c is not one. */
int srup__hex_value(char c);

#endif
