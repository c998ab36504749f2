#!/bin/sh
# SPDX-License-Identifier: MIT
# test_lab_tree.sh - the build tree scripts/run-lab.sh leaves (a fresh build folder, configured
# and built by the script itself, --build-only) installs with `cmake --install`, and the
# installed tree holds the plugin, libsrup, the srup tool and the daemons.
# Usage: test_lab_tree.sh SOURCE_DIR
set -u
SRC=$(cd "$1" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$SRC/scripts/run-lab.sh" --no-deps --build-only --build-dir "$t/build" >"$t/lab.log" 2>&1 ||
	{ tail -30 "$t/lab.log"; fail "run-lab.sh --build-only"; }
cmake --install "$t/build" --prefix "$t/prefix" >"$t/install.log" 2>&1 ||
	{ tail -30 "$t/install.log"; fail "cmake --install after run-lab.sh"; }
for f in bin/srup bin/srup-c2 bin/srup-device include/srup/srup.h; do
	[ -f "$t/prefix/$f" ] || fail "$f was not installed"
done
[ -n "$(find "$t/prefix" -name srup_plugin.so)" ] || fail "the plugin was not installed"
[ -n "$(find "$t/prefix" -name 'libsrup.so.0*')" ] || fail "libsrup was not installed"
echo "PASS: the tree run-lab.sh builds installs"
