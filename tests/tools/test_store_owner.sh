#!/bin/sh
# SPDX-License-Identifier: MIT
# test_store_owner.sh - root running `srup keys add` on a store that belongs to another user
# (the broker's, e.g. mosquitto) keeps that user the owner of every file it creates, and a user
# who cannot open the store is told whose it is and what to do. Needs root (exit 77: skipped).
# Usage: test_store_owner.sh SRUP_BINARY
set -u
SRUP=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
t=$(mktemp -d)
chmod 755 "$t"
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$t/store" && chown nobody:nogroup "$t/store" && chmod 700 "$t/store"
"$SRUP" keygen --out "$t/k" >/dev/null || fail keygen
chmod 644 "$t/k.pub.pem"
"$SRUP" keys add --store "$t/store" --id 4aa1 --role device --key "$t/k.pub.pem" >/dev/null ||
	fail "keys add as root"
for f in data.mdb lock.mdb audit.jsonl; do
	[ "$(stat -c %U "$t/store/$f")" = nobody ] || fail "$f belongs to $(stat -c %U "$t/store/$f")"
done
su -s /bin/sh nobody -c "'$SRUP' keys add --store '$t/store' --id 4aa2 --role device --key '$t/k.pub.pem'" \
	>/dev/null 2>&1 || fail "the store's owner cannot write it after root did"
chown root "$t/store/data.mdb"
out=$(su -s /bin/sh nobody -c "'$SRUP' keys list --store '$t/store'" 2>&1)
echo "$out" | grep -q "belong to uid 0 (the store must belong to the user the broker runs as" ||
	fail "no clear error: $out"
echo "PASS: the store keeps its owner"
