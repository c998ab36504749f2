#!/bin/sh
# SPDX-License-Identifier: MIT
# test_units.sh - the systemd units in packaging/systemd verify with systemd-analyze (with
# ExecStart pointed at this build) and keep the promised settings: Type=notify (the daemons
# speak sd_notify), reload by SIGHUP, a dedicated user, and the hardening options.
# Usage: test_units.sh SOURCE_DIR BUILD_DIR
set -eu
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
fail() { echo "FAIL: $*"; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not installed"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
n=0
for u in "$SRC"/packaging/systemd/*.service; do
	name=$(basename "$u")
	n=$((n + 1))
	for want in "Type=notify" "ExecReload=/bin/kill -HUP \$MAINPID" "User=srup" \
		"NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
		"CapabilityBoundingSet=" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"; do
		grep -qxF "$want" "$u" || fail "$name lacks '$want'"
	done
	# An instance of a template, with the build's programs.
	inst=$(echo "$name" | sed 's/@\.service$/@lab.service/')
	sed "s|/usr/bin/|$BUILD/tools/|" "$u" >"$t/$inst"
	out=$(cd "$t" && systemd-analyze verify "./$inst" 2>&1) || fail "$name: $out"
	# systemd-analyze exits 0 on some problems: any output about our unit is one.
	echo "$out" | grep -F "$inst" && fail "$name: systemd-analyze complained"
	echo "ok   $name"
done
[ "$n" -ge 2 ] || fail "only $n units found"
# A broken unit is caught (the check above can fail).
printf '[Service]\nType=notify\nExecStart=%s/tools/srup-c2 run\nNoSuchKey=1\n' "$BUILD" >"$t/broken.service"
(cd "$t" && systemd-analyze verify ./broken.service 2>&1) | grep -q "broken.service" ||
	fail "systemd-analyze did not notice an unknown key: the check is blind"
echo "PASS: $n units"
