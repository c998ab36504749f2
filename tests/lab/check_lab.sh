#!/bin/bash
# SPDX-License-Identifier: MIT
# check_lab.sh - one ctest per flow and per attack of the lab run left in LAB_DIR by the
# lab_native test: `check_lab.sh LAB_DIR flow NAME` passes if flow NAME completed;
# `check_lab.sh LAB_DIR attack NAME` passes if the broker refused attack NAME (PUBACK 0x87) and
# the audit log has a drop line for it.
set -u
LAB=${1:?usage: check_lab.sh LAB_DIR flow|attack NAME}
KIND=${2:?}
NAME=${3:?}
case $KIND in
	flow)
		line=$(grep -P "^[A-Z]+\t$NAME\t" "$LAB/results/flows.tsv" 2>/dev/null)
		echo "$line"
		[ "${line%%	*}" = PASS ] || { echo "FAIL: flow $NAME did not complete"; exit 1; }
		;;
	registry)
		# An attack on srup-registry: refused with the expected HTTP status, and logged.
		line=$(grep -P "^$NAME\t" "$LAB/results/registry_attacks.tsv" 2>/dev/null)
		echo "$line"
		[ "$(printf '%s' "$line" | cut -f2)" = refused ] ||
			{ echo "FAIL: registry attack $NAME was not refused"; exit 1; }
		grep -q "\"status\":$(printf '%s' "$line" | cut -f3)," "$LAB/logs/registry.jsonl" ||
			{ echo "FAIL: registry attack $NAME is not in the registry's log"; exit 1; }
		;;
	attack)
		line=$(grep -P "^$NAME\t" "$LAB/results/attacks.tsv" 2>/dev/null)
		echo "$line"
		verdict=$(printf '%s' "$line" | cut -f2)
		cid=$(printf '%s' "$line" | cut -f4)
		expect=$(printf '%s' "$line" | cut -f3)
		reason=$(printf '%s' "$line" | cut -f7)
		[ "$verdict" = dropped ] || { echo "FAIL: attack $NAME: $verdict"; exit 1; }
		grep "\"client_id\":\"$cid\"" "$LAB/audit.jsonl" | grep '"verdict":"drop"' ||
			{ echo "FAIL: attack $NAME has no drop line in the audit log"; exit 1; }
		# The reason the attacker saw in the drop line written for this very attempt (several
		# attempts claim the C2's client id, whose own drops must not count for them).
		case $reason in
			"" | "not delivered") ;;
			-) echo "FAIL: attack $NAME: no drop line was written for the attempt"; exit 1 ;;
			*)
				grep "\"client_id\":\"$cid\"" "$LAB/audit.jsonl" | grep '"verdict":"drop"' |
					grep -q "\"reason\":\"$reason\"" ||
					{ echo "FAIL: attack $NAME: no $reason drop line"; exit 1; }
				# Dropped for the reason the attack is about, not by an earlier check.
				[ "$reason" = "$expect" ] ||
					{ echo "FAIL: attack $NAME: dropped as $reason, expected $expect"; exit 1; }
				;;
		esac
		;;
	*) exit 2 ;;
esac
