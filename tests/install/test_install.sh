#!/bin/sh
# SPDX-License-Identifier: MIT
# test_install.sh - `cmake --install` into a temporary prefix gives a libsrup that other
# programs build against: with `pkg-config --cflags --libs srup` (srup.pc is found relative to
# itself, so any prefix works) and with CMake's find_package(srup). Both programs run. So does
# one linked against the static libsrup.a, by `pkg-config --static` and by srup::srup_static:
# it draws a PNG pictograph, so it needs zlib (Requires.private) as well.
# Usage: test_install.sh BUILD_DIR
set -u
BUILD=$(cd "$1" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$t/prefix"
cmake --install "$BUILD" --prefix "$P" >"$t/install.log" 2>&1 || { cat "$t/install.log"; fail "cmake --install"; }
pc=$(find "$P" -name srup.pc | head -1)
[ -n "$pc" ] || fail "no srup.pc installed"
cat >"$t/hello.c" <<'C'
#include <stdio.h>
#include <srup/srup.h>
int main(void)
{
	char text[SRUP_ID_TEXT_MAX];
	if (srup_id_format(srup_id_new(), text, sizeof(text)) != SRUP_OK) {
		return 1;
	}
	printf("%s\n", text);
	return 0;
}
C
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
[ "$(pkg-config --modversion srup)" != "" ] || fail "pkg-config does not know srup"
flags=$(pkg-config --cflags --libs srup) || fail "pkg-config --cflags --libs srup"
case $flags in *"$P"*) ;; *) fail "the flags do not point into the prefix: $flags" ;; esac
libdir=$(pkg-config --variable=libdir srup)
# shellcheck disable=SC2086
cc -o "$t/hello" "$t/hello.c" $flags -Wl,-rpath,"$libdir" || fail "cc with pkg-config flags"
out=$("$t/hello") || fail "the pkg-config program does not run"
echo "$out" | grep -Eq '^[0-9a-f]{1,16}$' || fail "pkg-config program printed '$out'"
mkdir "$t/cm"
cat >"$t/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(hello C)
find_package(srup 0.1 REQUIRED)
add_executable(hello ../hello.c)
target_link_libraries(hello PRIVATE srup::srup)
CM
cmake -S "$t/cm" -B "$t/cm/b" -DCMAKE_PREFIX_PATH="$P" >"$t/cm.log" 2>&1 &&
	cmake --build "$t/cm/b" >>"$t/cm.log" 2>&1 || { cat "$t/cm.log"; fail "find_package(srup) build"; }
out=$("$t/cm/b/hello") || fail "the find_package program does not run"
echo "$out" | grep -Eq '^[0-9a-f]{1,16}$' || fail "find_package program printed '$out'"

# The static library: its private dependencies (libcrypto, uuid, zlib) from pkg-config --static.
cat >"$t/png.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <srup/srup.h>
int main(void)
{
	struct srup_id128 id = {{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}};
	struct srup_pict p;
	uint8_t *png = NULL;
	size_t len = 0;
	if (srup_pict_make(&id, SRUP_PICT_COLOUR, &p) != SRUP_OK ||
	    srup_pict_png(&p, 16, &png, &len) != SRUP_OK) {
		return 1;
	}
	printf("%zu\n", len);
	free(png);
	return 0;
}
C
[ -f "$libdir/libsrup.a" ] || fail "no libsrup.a in $libdir"
pkg-config --static --libs srup | grep -q -- '-lz' || fail "pkg-config --static lacks -lz: $(pkg-config --static --libs srup)"
deps=$(pkg-config --static --libs srup | sed 's/ -lsrup / /; s/^-lsrup //') || fail "pkg-config --static"
cflags=$(pkg-config --cflags srup)
# shellcheck disable=SC2086
cc -o "$t/png_static" "$t/png.c" $cflags "$libdir/libsrup.a" $deps ||
	fail "cc with libsrup.a and pkg-config --static"
out=$("$t/png_static") || fail "the static program does not run"
echo "static (pkg-config): a colour pictograph at scale 16 is a $out-byte PNG"
mkdir "$t/cms"
cat >"$t/cms/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(png C)
find_package(srup 0.1 REQUIRED)
add_executable(png ../png.c)
target_link_libraries(png PRIVATE srup::srup_static)
CM
cmake -S "$t/cms" -B "$t/cms/b" -DCMAKE_PREFIX_PATH="$P" >"$t/cms.log" 2>&1 &&
	cmake --build "$t/cms/b" >>"$t/cms.log" 2>&1 || { cat "$t/cms.log"; fail "find_package(srup) srup::srup_static build"; }
"$t/cms/b/png" >/dev/null || fail "the srup::srup_static program does not run"
echo "PASS: installed libsrup builds with pkg-config and find_package, shared and static"
