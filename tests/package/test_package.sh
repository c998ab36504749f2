#!/bin/bash
# SPDX-License-Identifier: MIT
# test_package.sh - the Debian packages (cpack -G DEB) on a clean Debian 12 root: a debootstrap
# chroot (minbase + Debian's mosquitto; the tarball is cached in the build folder) gets
# libsrup0, srup-tools and mosquitto-srup installed with dpkg, the plugin enabled in the packaged
# /etc/mosquitto/conf.d/srup.conf, keys added as root with the packaged srup tool, and Debian's
# mosquitto started from its own configuration (as the mosquitto user, listening on 127.0.0.1).
# A valid SRUP message passes; its replay is refused, with a drop line in the audit log.
# Needs root and Debian's mirror. Usage: test_package.sh SOURCE_DIR BUILD_DIR
set -u
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
CACHE=$BUILD/package-cache
PKGB=$BUILD/package-build
MIRROR=${SRUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v debootstrap >/dev/null || fail "debootstrap is not installed"

echo "== packages"
cmake -S "$SRC" -B "$PKGB" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/package-build.log" 2>&1 &&
	cmake --build "$PKGB" -j2 >>"$BUILD/package-build.log" 2>&1 &&
	(cd "$PKGB" && rm -f ./*.deb && cpack -G DEB) >>"$BUILD/package-build.log" 2>&1 ||
	{ tail -30 "$BUILD/package-build.log"; fail "cpack -G DEB"; }
ls "$PKGB"/*.deb

echo "== a clean Debian 12 root"
mkdir -p "$CACHE"
if [ ! -s "$CACHE/bookworm.tar" ]; then
	rm -rf "$CACHE/root"
	debootstrap --variant=minbase \
		--include=mosquitto,mosquitto-clients,openssl,liblmdb0,libjansson4,libqrencode4,zlib1g \
		bookworm "$CACHE/root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$CACHE/debootstrap.log"; fail "debootstrap"; }
	tar -C "$CACHE/root" -cf "$CACHE/bookworm.tar.tmp" . && mv "$CACHE/bookworm.tar.tmp" "$CACHE/bookworm.tar"
	rm -rf "$CACHE/root"
fi
T=$(mktemp -d)
R=$T/root
PID=
cleanup() {
	local p
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	# Every process still running inside the root (mosquitto forks nothing, but be sure).
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && kill "${p#/proc/}" 2>/dev/null
	done
	sleep 0.5
	rm -rf "$T"
}
trap cleanup EXIT
mkdir "$R" && tar -C "$R" -xf "$CACHE/bookworm.tar" || fail "unpack the root"
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

echo "== install"
mkdir -p "$R/tmp/debs" && cp "$PKGB"/libsrup0_*.deb "$PKGB"/srup-tools_*.deb \
	"$PKGB"/mosquitto-srup_*.deb "$R/tmp/debs/"
in_root sh -c 'dpkg -i /tmp/debs/*.deb' || fail "dpkg -i"
in_root dpkg -s mosquitto-srup | grep -q "Status: install ok installed" || fail "not installed"
[ "$(in_root stat -c %U /var/lib/srup)" = mosquitto ] || fail "/var/lib/srup does not belong to mosquitto"
grep -q '^#plugin /usr/lib/.*/mosquitto/srup_plugin.so' "$R/etc/mosquitto/conf.d/srup.conf" ||
	fail "conf.d/srup.conf does not ship commented out"
plugin=$(sed -n 's/^#plugin //p' "$R/etc/mosquitto/conf.d/srup.conf")
[ -f "$R$plugin" ] || fail "the plugin is not at $plugin"

echo "== enable the plugin, keys, certificates"
sed -i 's/^#plugin/plugin/' "$R/etc/mosquitto/conf.d/srup.conf"
S=$(in_root srup id) && D=$(in_root srup id) || fail "srup id"
in_root srup keygen --out /root/server >/dev/null && in_root srup keygen --out /root/dev >/dev/null ||
	fail "srup keygen"
in_root srup keys add --store /var/lib/srup --id "$S" --role server --key /root/server.pub.pem &&
	in_root srup keys add --store /var/lib/srup --id "$D" --role device --key /root/dev.pub.pem ||
	fail "srup keys add (as root)"
C=$R/root/pki
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=test-ca -days 2 \
	-keyout "$C/ca.key" -out "$C/ca.crt" 2>/dev/null
for n in broker:localhost dev:$D; do
	name=${n%%:*}
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${n#*:}" \
		-keyout "$C/$name.key" -out "$C/$name.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$C/$name.ext"
	openssl x509 -req -in "$C/$name.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
		-days 2 -extfile "$C/$name.ext" -out "$C/$name.crt" 2>/dev/null || fail "certificate $name"
done
chmod 644 "$C"/*
PORT=$((20000 + RANDOM % 30000))
cat >"$R/etc/mosquitto/conf.d/test-listener.conf" <<CONF
listener $PORT 127.0.0.1
cafile /root/pki/ca.crt
certfile /root/pki/broker.crt
keyfile /root/pki/broker.key
require_certificate true
# Any holder of a certificate from this CA may connect; SRUP topics are the plugin's to judge.
allow_anonymous true
CONF
chmod 755 "$R/root" "$C"
mkdir -p "$R/run/mosquitto" && in_root chown mosquitto: /run/mosquitto

echo "== Debian's mosquitto with the plugin"
chroot "$R" /usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf >"$T/broker.out" 2>&1 &
PID=$!
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.2
done
grep -q "srup: loaded" "$R/var/log/mosquitto/mosquitto.log" "$T/broker.out" 2>/dev/null ||
	{ cat "$T/broker.out" "$R/var/log/mosquitto/mosquitto.log" 2>/dev/null | tail -20; fail "the plugin did not load"; }

echo "== a valid message, then its replay"
printf '{"version": 5, "type": "DATA", "sequence_id": 1, "sender_id": "%s", "token_hex": "%s", "data_id_hex": "%s", "data_hex": "%s"}' \
	"$D" "$(printf tok-1 | od -An -tx1 | tr -d ' \n')" "$(printf T | od -An -tx1 | tr -d ' \n')" \
	"$(printf 21 | od -An -tx1 | tr -d ' \n')" >"$R/root/msg.json"
in_root sh -c 'srup encode --key /root/dev.pem /root/msg.json >/root/msg.bin' || fail "srup encode"
pub() {
	in_root mosquitto_pub -V 5 -q 1 -h 127.0.0.1 -p "$PORT" --cafile /root/pki/ca.crt \
		--cert /root/pki/dev.crt --key /root/pki/dev.key -i "$1" -t "SRUP/$D" -f /root/msg.bin 2>&1
}
out=$(pub first)
echo "first:  ${out:-(accepted)}"
[ -z "$out" ] || fail "the valid message was not accepted: $out"
out=$(pub replay)
echo "replay: $out"
echo "$out" | grep -qi "not authorized" || fail "the replay was not refused: $out"
sleep 0.5
grep '"verdict":"drop"' "$R/var/log/mosquitto/srup-audit.jsonl" | grep -q '"reason":"replay"' ||
	fail "no replay drop in the audit log"
echo "PASS: packages install on Debian 12; the packaged mosquitto with the plugin passes a valid message and refuses its replay"
