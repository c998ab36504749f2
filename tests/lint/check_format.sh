#!/bin/sh
# SPDX-License-Identifier: MIT
# check_format.sh - every C source and header is as clang-format (with the repo's .clang-format)
# would write it. Prints the files that are not, and how to fix them.
set -eu
cd "$(dirname "$0")/../.."
CF=${CLANG_FORMAT:-clang-format}
bad=0
checked=0
for f in $(find libsrup plugin store tools tests -name '*.[ch]' -not -path '*/corpus/*' | sort); do
	checked=$((checked + 1))
	if ! "$CF" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f"
		bad=$((bad + 1))
	fi
done
if [ "$checked" -eq 0 ]; then
	echo "check_format: no C files found" >&2
	exit 1
fi
echo "check_format: $checked files, $bad not formatted"
if [ "$bad" -ne 0 ]; then
	echo "fix with: find libsrup plugin store tools tests -name '*.[ch]' | xargs $CF -i --style=file"
	exit 1
fi
