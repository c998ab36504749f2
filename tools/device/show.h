/* SPDX-License-Identifier: MIT
 * show.h - how srup-device shows a join value to a person (paper §8): phrase and pictograph. */
#ifndef SRUP_DEVICE_SHOW_H
#define SRUP_DEVICE_SHOW_H

/* Show value (32 hex characters) in the log as hex and word phrase, and, if show_file is set,
 * write show_file (text: value and phrase), show_file.svg and show_file.ansi (pictographs).
 * A value that is not 128 bits is shown as it is. Never fails the join: display only. */
void device_show_value(const char *show_file, const char *value);

#endif
