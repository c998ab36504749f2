#!/bin/bash
# SPDX-License-Identifier: MIT
# test_lab_native.sh - run the whole lab natively on loopback (docker/lab.sh native) with the
# plugin from this build, then assert: every flow of issue 4 completed, every attack was answered
# "Not authorized" by the broker and has a drop line in the audit log, the eavesdropper got
# nothing. Usage: test_lab_native.sh [--run-only|--check-only] BUILD_DIR [LAB_DIR]
# With LAB_DIR the lab's files are kept there for the per-flow ctest checks (check_lab.sh);
# without, a temporary directory is used and removed. --run-only runs the lab and passes if it
# left results (the ctest fixture, so that one attack getting through does not hide the other
# checks); --check-only asserts on the results a --run-only run left in LAB_DIR.
set -u
MODE=all
case ${1:-} in
	--run-only) MODE=run; shift ;;
	--check-only) MODE=check; shift ;;
esac
BUILD=${1:?usage: test_lab_native.sh [--run-only|--check-only] BUILD_DIR [LAB_DIR]}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*"; exit 1; }

[ -f "$BUILD/plugin/srup_plugin.so" ] || fail "plugin not built at $BUILD/plugin/srup_plugin.so"
if [ -n "${2:-}" ]; then
	LAB=$2
	[ $MODE = check ] || rm -rf "$LAB/results" "$LAB/audit.jsonl" "$LAB/lab-native.rc"
	mkdir -p "$LAB"
else
	[ $MODE = all ] || fail "--run-only and --check-only need LAB_DIR"
	LAB=$(mktemp -d /tmp/srup-lab-test.XXXXXX)
	trap 'if [ "${KEEP:-0}" = 1 ]; then echo "kept $LAB"; else rm -rf "$LAB"; fi' EXIT
fi

if [ $MODE != check ]; then
	SRUP_BUILD_DIR=$BUILD LAB_DIR=$LAB "$REPO/docker/lab.sh" native >"$LAB.out" 2>&1
	rc=$?
	echo $rc >"$LAB/lab-native.rc"
	cat "$LAB.out"
	rm -f "$LAB.out"
	if [ $MODE = run ]; then
		if [ ! -s "$LAB/results/flows.tsv" ] || [ ! -s "$LAB/results/attacks.tsv" ]; then
			fail "the lab left no results (lab.sh native exited $rc)"
		fi
		echo "lab ran (lab.sh native exited $rc); lab_native and lab_flow_* / lab_attack_* judge it"
		exit 0
	fi
else
	rc=$(cat "$LAB/lab-native.rc" 2>/dev/null) || fail "no lab run in $LAB"
	python3 "$REPO/docker/summary.py" --lab "$LAB"
fi

flows="$LAB/results/flows.tsv"
attacks="$LAB/results/attacks.tsv"
# Every flow the issue asks for must be there and PASS (a flow that silently did not run fails).
for f in register_c2 register_dev1 register_dev2 register_beacon join_cmd_beacon simple_join_dev1 id_request_dev1 hm_join_operator hm_join_dev2 \
	update_ok update_https activate_without_update update_bad_digest update_http_error action_success action_fail action_unknown \
	data_c2_to_device data_type_unknown data_device_to_c2 no_dos_after_forgery \
	stranger_left_dev1_key stranger_left_c2_key data_device_to_c2_after_attacks resign_dev1 \
	resign_dev1_c2_view observed_join_dev1 after_observed_join terminate_dev1 \
	terminate_dev1_device_view hm_join_operator_rejects hm_join_refused_dev1 \
	deregister_req_dev2 deregister_req_c2_view \
	deregister_req_store deregister_cmd_beacon deregister_cmd_beacon_view deregister_cmd_store; do
	grep -q "^PASS	$f	" "$flows" || fail "flow $f did not complete"
done
grep -q "^FAIL" "$flows" && fail "a flow failed"
n=$(wc -l <"$attacks")
[ "$n" -ge 20 ] || fail "only $n attacks ran"
# The attack classes of issue 10 must each have run (a missing row is a failure, not a pass).
for a in fake_join_success fake_join_cmd eavesdrop_after_fake_join stranger_deregister_dev1 \
	stranger_terminate_dev1 stranger_deregister_c2 seen_flush_replay retransmit_qos0_plain \
	retransmit_qos1_plain retransmit_qos0_tls retransmit_qos1_tls retransmit_will_plain \
	retransmit_will_tls; do
	grep -q "^$a	" "$attacks" || fail "attack $a did not run"
done
grep -v "	dropped	" "$attacks" && fail "an attack was not dropped"
# Each attack's drop is in the audit log under the attacker's client id.
while IFS='	' read -r name _ _ cid _; do
	grep -q "\"client_id\":\"$cid\"" "$LAB/audit.jsonl" ||
		fail "attack $name ($cid) has no line in the audit log"
done <"$attacks"
[ -s "$LAB/results/sniffed.log" ] && fail "the eavesdropper received messages"
# The attacks on srup-registry: each ran and was refused.
for a in registry_duplicate_dev1 registry_stolen_c2 registry_csr_other_cn \
	registry_access_without_key registry_flood; do
	grep -qP "^$a\trefused\t" "$LAB/results/registry_attacks.tsv" ||
		fail "registry attack $a did not run or was not refused"
done
# The lab's own daemons never send what the broker's membership rules refuse (e.g. a reply to a
# device that has just left): such a drop under their sender id is a daemon defect.
# shellcheck disable=SC1091
. "$LAB/ids.env"
for id in "$ID_c2" "$ID_dev1" "$ID_dev2" "$ID_beacon"; do
	grep -E '"reason":"(not_member|unknown_target|no_pending_join)"' "$LAB/audit.jsonl" |
		grep -q "\"sender\":\"$id\"" &&
		fail "the broker refused a membership-changing message from lab daemon $id"
done
[ "$rc" -eq 0 ] || fail "lab.sh native exited $rc"
echo "PASS: lab native ($(grep -c ^PASS "$flows") flows, $n attacks dropped)"
