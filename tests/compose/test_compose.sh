#!/bin/bash
# SPDX-License-Identifier: MIT
# test_compose.sh - the compose lab run for real with Podman: a Debian 12 base image built
# locally (debootstrap, no registry needed; the tarball of tests/package is reused when there),
# the lab image built from docker/Dockerfile, `podman-compose up`, and the attacker service's
# summary must say every flow completed and every attack was dropped.
# This machine's sandbox needs the runc runtime and lowered ulimits (see docker/README.md): they
# are set here, in a CONTAINERS_CONF of the test, not in the compose file.
# Usage: test_compose.sh SOURCE_DIR BUILD_DIR
set -u
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
W=$BUILD/compose-test
MIRROR=${SRUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v podman >/dev/null && command -v podman-compose >/dev/null ||
	fail "podman and podman-compose are not installed"
mkdir -p "$W"
cat >"$W/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$W/containers.conf
# One compose lab per host: the project name and the image tag are fixed, so a run from another
# build folder (CI and a developer, say) waits here instead of removing this one's containers.
exec 9>/tmp/srup-compose-test.lock
flock -w 900 9 || fail "another compose lab run held /tmp/srup-compose-test.lock for 15 minutes"
if ! podman image exists debian:12; then
	tarball=$BUILD/package-cache/bookworm.tar
	if [ ! -s "$tarball" ]; then
		tarball=$W/bookworm-minbase.tar
		if [ ! -s "$tarball" ]; then
			rm -rf "$W/root"
			debootstrap --variant=minbase bookworm "$W/root" "$MIRROR" >"$W/debootstrap.log" 2>&1 ||
				{ tail -20 "$W/debootstrap.log"; fail "debootstrap"; }
			tar -C "$W/root" -cf "$tarball" . && rm -rf "$W/root"
		fi
	fi
	podman import "$tarball" debian:12 >/dev/null || fail "podman import"
fi
P=srupcomposetest
C="podman-compose -p $P -f $SRC/docker/docker-compose.yml"
cleanup() {
	$C down -v >"$W/down.log" 2>&1
	podman network rm -f "${P}_default" >>"$W/down.log" 2>&1
}
trap cleanup EXIT
cleanup
t0=$(date +%s)
podman rmi -f srup-broker-lab >/dev/null 2>&1
$C build >"$W/build.log" 2>&1
podman image exists srup-broker-lab || { tail -40 "$W/build.log"; fail "image build"; }
t1=$(date +%s)
$C up -d >"$W/up.log" 2>&1 || { tail -40 "$W/up.log"; fail "podman-compose up"; }
attacker=$(podman ps -a --format '{{.Names}}' | grep "^${P}_attacker" | head -1)
[ -n "$attacker" ] || fail "no attacker container"
rc=$(timeout 900 podman wait "$attacker") || fail "the attacker did not finish"
t2=$(date +%s)
podman logs "$attacker" >"$W/attacker.log" 2>&1
grep -A200 "SRUP lab summary" "$W/attacker.log" | head -120
echo "image build $((t1 - t0)) s, lab run $((t2 - t1)) s"
if ! grep -q "RESULT: PASS" "$W/attacker.log"; then
	for n in $(podman ps -a --format '{{.Names}}' | grep "^${P}_"); do
		echo "---- $n: $(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$n")"
		podman logs "$n" 2>&1 | tail -15
	done
	fail "the compose lab did not pass (attacker exit $rc)"
fi
[ "$rc" = 0 ] || fail "the attacker service exited $rc"
echo "PASS: the compose lab under Podman"
