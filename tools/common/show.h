/* SPDX-License-Identifier: MIT
 * show.h - how the lab daemons show a join value to a person (paper §8): phrase and pictograph.
 * The device and the C2 render the same value the same way, so the operator can compare them. */
#ifndef SRUPD_SHOW_H
#define SRUPD_SHOW_H

/* Show value (32 hex characters) in the log as hex and word phrase, and, if show_file is set,
 * write show_file (text: value and phrase), show_file.svg and show_file.ansi (pictographs).
 * A value that is not 128 bits is shown as it is. Never fails the join: display only. */
void srupd_show_value(const char *show_file, const char *value);

#endif
