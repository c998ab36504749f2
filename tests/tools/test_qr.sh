#!/bin/sh
# SPDX-License-Identifier: MIT
# test_qr.sh - `srup qr URL`: the PNG decodes (zbarimg, another implementation) back to the URL;
# the SVG is well-formed and drawn; ANSI output is a square of coloured cells; bad input is a
# usage error. Usage: test_qr.sh SRUP_BINARY
set -u
SRUP=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
url="https://registry.example:8443/KeyEx/register?x=1&y=%C3%A9"
"$SRUP" qr "$url" --format png --out "$t/q.png" || fail "png"
got=$(zbarimg -q --raw "$t/q.png" 2>/dev/null | head -1)
[ "$got" = "$url" ] || fail "the PNG decodes to '$got', not '$url'"
"$SRUP" qr "$url" --format png --scale 2 >"$t/small.png" || fail "png to a pipe"
[ "$(zbarimg -q --raw "$t/small.png" 2>/dev/null | head -1)" = "$url" ] || fail "scale 2 png"
"$SRUP" qr "$url" >"$t/q.svg" || fail "svg"
python3 -c "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); assert d.getElementsByTagName('path')[0].getAttribute('d').count('M') > 100" "$t/q.svg" ||
	fail "the SVG is not well-formed or has no modules"
"$SRUP" qr "$url" --format ansi >"$t/q.ansi" || fail "ansi"
lines=$(wc -l <"$t/q.ansi")
cells=$(head -1 "$t/q.ansi" | grep -o '48;2' | wc -l)
[ "$lines" -eq "$cells" ] && [ "$lines" -ge 29 ] || fail "ANSI output is $cells x $lines"
for bad in "" "--format gif x" "--scale 0 x" "a b"; do
	# shellcheck disable=SC2086
	"$SRUP" qr $bad >/dev/null 2>&1
	[ $? -eq 3 ] || fail "srup qr $bad: not a usage error"
done
echo "PASS: srup qr"
