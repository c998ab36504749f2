#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-tests.sh - the whole test run of srup-broker, from a clean clone on Debian 12:
#   1. install the Debian packages (scripts/install-deps.sh; needs root)
#   2. build/       : -DSRUP_WERROR=ON, then every ctest test (unit, fuzz-replay, tools,
#                     integration, lab, valgrind, install, package, compose). package and
#                     compose need root and Debian's mirror (measured 2026-12-05 on 2 shared
#                     cores: package ~50 s cold (debootstrap), ~9 s with the root cached in
#                     build/package-cache; compose ~90 s, 44 s of it the lab image, +30 s when
#                     the debian:12 base image has to be made; install ~50 s, a fresh build)
#   3. build-asan/  : -DSRUP_SANITIZE=ON (ASan + UBSan), then the unit and fuzz-replay labels
#   4. build-fuzz/  : clang, -DSRUP_FUZZ=ON, then each libFuzzer target for FUZZ_TIME seconds
#                     over a copy of its corpus; a crash fails the stage
#   5. --bench      : the benchmark programs of build/tests/bench/, figures printed
# Every stage runs even when an earlier independent one failed; the exit status is non-zero
# if any stage failed, and the last line is "N passed, N failed".
#
# Options: --bench          also run the benchmarks
#          --no-deps        skip step 1 (packages already installed)
#          --fuzz-time N    seconds per fuzz target (default 60)
#          --jobs N         build parallelism (default 2)
# Environment: SRUP_SKIP_DEPS=1 is the same as --no-deps.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 3

BENCH=0
DEPS=1
FUZZ_TIME=60
JOBS=2
if [ "${SRUP_SKIP_DEPS:-0}" = 1 ]; then
	DEPS=0
fi
while [ $# -gt 0 ]; do
	case "$1" in
		--bench) BENCH=1 ;;
		--no-deps) DEPS=0 ;;
		--fuzz-time)
			shift
			FUZZ_TIME="${1:-}"
			;;
		--jobs)
			shift
			JOBS="${1:-}"
			;;
		-h | --help)
			sed -n '3,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p'
			exit 0
			;;
		*)
			echo "run-tests.sh: unknown option '$1' (try --help)" >&2
			exit 3
			;;
	esac
	shift
done
case "$FUZZ_TIME:$JOBS" in
	:* | *: | *[!0-9:]* | 0:* | *:0)
		echo "run-tests.sh: --fuzz-time and --jobs take a positive number" >&2
		exit 3
		;;
esac

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_TIMES=()
STAGE_NOTES=()
PASSED=0
FAILED=0

# record NAME RESULT SECONDS [NOTE]
record() {
	STAGE_NAMES+=("$1")
	STAGE_RESULTS+=("$2")
	STAGE_TIMES+=("$3")
	STAGE_NOTES+=("${4:-}")
	if [ "$2" = pass ]; then
		PASSED=$((PASSED + 1))
	else
		FAILED=$((FAILED + 1))
	fi
}

# stage NAME COMMAND...: runs the command, records pass/fail and duration. Returns its status.
stage() {
	local name="$1"
	shift
	local t0=$SECONDS
	echo
	echo "==== [$name] $*"
	"$@"
	local rc=$?
	local dt=$((SECONDS - t0))
	if [ $rc -eq 0 ]; then
		record "$name" pass "$dt"
		echo "==== [$name] passed (${dt}s)"
	else
		record "$name" FAIL "$dt" "exit status $rc"
		echo "==== [$name] FAILED with exit status $rc (${dt}s)"
	fi
	return $rc
}

# A stage that could not run because the one it needs failed counts as failed.
not_run() {
	record "$1" FAIL 0 "not run: $2"
	echo
	echo "==== [$1] NOT RUN: $2"
}

configure_and_build() {
	local dir="$1"
	shift
	cmake -S "$ROOT" -B "$ROOT/$dir" "$@" && cmake --build "$ROOT/$dir" -j"$JOBS"
}

run_ctest() {
	local dir="$1"
	shift
	(cd "$ROOT/$dir" && ctest --output-on-failure --no-tests=error --timeout 900 "$@")
}

fuzz_targets() {
	local f
	for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
		if [ -e "$f" ]; then
			basename "$f" .c
		fi
	done
}

build_fuzz() {
	local targets=()
	mapfile -t targets < <(fuzz_targets)
	if [ ${#targets[@]} -eq 0 ]; then
		echo "no tests/fuzz/fuzz_*.c targets"
		return 1
	fi
	cmake -S "$ROOT" -B "$ROOT/build-fuzz" -DCMAKE_C_COMPILER=clang -DSRUP_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo &&
		cmake --build "$ROOT/build-fuzz" -j"$JOBS" --target "${targets[@]}"
}

# run_fuzzer NAME: NAME is fuzz_<t>; runs it over a scratch copy of tests/fuzz/corpus/<t>/ so
# the committed corpus only changes by hand. Crash inputs land in build-fuzz/artifacts/.
run_fuzzer() {
	local name="$1"
	local t="${name#fuzz_}"
	local bin="$ROOT/build-fuzz/tests/fuzz/$name"
	local corpus="$ROOT/tests/fuzz/corpus/$t"
	local work
	local rc
	local args=()

	if [ ! -x "$bin" ]; then
		echo "$bin was not built"
		return 1
	fi
	if [ ! -d "$corpus" ]; then
		echo "no seed corpus at $corpus"
		return 1
	fi
	work="$(mktemp -d "${TMPDIR:-/tmp}/srup-fuzz-$t.XXXXXX")" || return 1
	cp -a "$corpus/." "$work/"
	mkdir -p "$ROOT/build-fuzz/artifacts"
	if [ -f "$ROOT/tests/fuzz/$t.dict" ]; then
		args+=("-dict=$ROOT/tests/fuzz/$t.dict")
	fi
	"$bin" -max_total_time="$FUZZ_TIME" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$ROOT/build-fuzz/artifacts/$name-" \
		"${args[@]}" "$work" 2>&1 | tee "$ROOT/build-fuzz/$name.log" |
		grep -v -E '^(#[0-9]+[[:space:]]+(pulse|NEW|REDUCE)|"|###### )'
	rc=${PIPESTATUS[0]}
	rm -rf "$work"
	local execs
	execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$ROOT/build-fuzz/$name.log" | tail -n 1)"
	FUZZ_NOTE="${execs:-?} executions in ${FUZZ_TIME}s"
	if [ "$rc" -ne 0 ]; then
		FUZZ_NOTE="stopped after ${execs:-?} executions; see build-fuzz/$name.log and build-fuzz/artifacts/"
		echo "$name failed; crash input(s) in build-fuzz/artifacts/ (commit them to $corpus)"
	fi
	return "$rc"
}

run_benches() {
	local found=0
	local rc=0
	local b
	for b in "$ROOT"/build/tests/bench/bench_*; do
		if [ -x "$b" ] && [ -f "$b" ]; then
			found=1
			echo "---- $(basename "$b")"
			"$b" || rc=1
		fi
	done
	if [ $found -eq 0 ]; then
		echo "no benchmarks were built in build/tests/bench/"
		return 1
	fi
	return $rc
}

START=$SECONDS
# Sanitizer settings for the ASan ctest run and the fuzzers (a caller's own settings win).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# 1. Packages
if [ $DEPS -eq 1 ]; then
	stage deps bash "$ROOT/scripts/install-deps.sh"
else
	echo "==== [deps] skipped (--no-deps)"
fi

# 2. Normal build, all tests
if stage build configure_and_build build -DSRUP_WERROR=ON; then
	stage ctest run_ctest build
else
	not_run ctest "build failed"
fi

# 3. Sanitizer build: unit and fuzz-replay labels
if stage asan-build configure_and_build build-asan -DSRUP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug; then
	stage asan-ctest run_ctest build-asan -L 'unit|fuzz-replay'
else
	not_run asan-ctest "asan-build failed"
fi

# 4. libFuzzer smoke run, each target FUZZ_TIME seconds
if ! command -v clang >/dev/null 2>&1; then
	not_run fuzz-build "clang is not installed (scripts/install-deps.sh installs it)"
elif stage fuzz-build build_fuzz; then
	for name in $(fuzz_targets); do
		FUZZ_NOTE=""
		t0=$SECONDS
		echo
		echo "==== [$name] ${FUZZ_TIME}s"
		if run_fuzzer "$name"; then
			record "$name" pass $((SECONDS - t0)) "$FUZZ_NOTE"
			echo "==== [$name] passed: $FUZZ_NOTE"
		else
			record "$name" FAIL $((SECONDS - t0)) "$FUZZ_NOTE"
			echo "==== [$name] FAILED: $FUZZ_NOTE"
		fi
	done
fi

# 5. Benchmarks (figures only)
if [ $BENCH -eq 1 ]; then
	if [ -d "$ROOT/build/tests/bench" ]; then
		stage bench run_benches
	else
		not_run bench "build/ has no benchmarks (did the build fail?)"
	fi
fi

echo
echo "==== summary ($((SECONDS - START))s)"
for i in "${!STAGE_NAMES[@]}"; do
	printf '  %-22s %-5s %5ss  %s\n' "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}" \
		"${STAGE_TIMES[$i]}" "${STAGE_NOTES[$i]}"
done
echo "$PASSED passed, $FAILED failed"
if [ $FAILED -ne 0 ]; then
	exit 1
fi
exit 0
