/* SPDX-License-Identifier: MIT
 * export.h - symbol visibility for libsrup: the library builds with -fvisibility=hidden and
 * marks each public function SRUP_API at its definition. */
#ifndef SRUP_EXPORT_H
#define SRUP_EXPORT_H

#define SRUP_API __attribute__((visibility("default")))

#endif
