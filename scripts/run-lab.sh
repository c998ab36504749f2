#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-lab.sh - from a clean clone on Debian 12: install the dependencies, build into build/,
# then run the SRUP lab natively on loopback (docker/lab.sh native) and print its summary.
# Exit status: 0 only if every flow completed and no attack got through.
# Options: --no-deps (skip apt-get), --build-dir DIR (default <repo>/build),
#          --build-only (configure and build, then stop: tests/install checks the tree installs).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
DEPS=1
BUILD_ONLY=0
while [ $# -gt 0 ]; do
	case $1 in
		--no-deps) DEPS=0 ;;
		--build-dir) BUILD=$2; shift ;;
		--build-only) BUILD_ONLY=1 ;;
		-h | --help)
			sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//'
			exit 0
			;;
		*) echo "usage: run-lab.sh [--no-deps] [--build-dir DIR] [--build-only]" >&2; exit 3 ;;
	esac
	shift
done

if [ "$DEPS" = 1 ]; then
	"$REPO/scripts/install-deps.sh"
fi
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Everything (not only the lab's programs): the tree it leaves installs with `cmake --install`.
cmake --build "$BUILD" -j2
if [ "$BUILD_ONLY" = 1 ]; then
	exit 0
fi
SRUP_BUILD_DIR=$BUILD LAB_DIR=${LAB_DIR:-$BUILD/lab} exec "$REPO/docker/lab.sh" native
