#!/bin/bash
# SPDX-License-Identifier: MIT
# lab.sh - the SRUP lab: one script for every lab service, used natively (`lab.sh native` runs
# them all on 127.0.0.1) and by docker-compose (each service runs `lab.sh <role>`).
#
# Roles:  init        make ids, SRUP keys, CA and certificates (first start only), the key store
#                     and every config file
#         broker      mosquitto with the SRUP plugin (TLS listener, plus a plain one)
#         files       the update file server (docker/files.py: HTTP and HTTPS)
#         registry    srup-registry, the registration service (HTTPS): the C2 registers itself
#                     there at start, the devices and the beacon register before they start
#         c2 | device1 | device2 | beacon      the daemons
#         scenario    every protocol flow, driven through the control sockets
#         attacker    capture, replay, tamper, forge, fake joins, stranger revocations, seen-index
#                     flood, retransmission abuse; every attempt must be dropped
#         exporter    prometheus-mqtt-exporter (native only) on 127.0.0.1:EXPORTER_PORT
#         metrics     the exporter's scrape (metrics.prom) and the broker's $SYS/broker/srup/#
#                     values read as the exporter identity (sys.json), once they agree
#         summary     the table: flows completed, attacks dropped by reason, what got through
#         native      all of the above on loopback, then stop everything; exit 0 only if every
#                     flow completed and no attack got through
#         compose-broker  init, then broker (the compose "broker" service)
#         compose-run the scenario, attacker and summary as the compose "attacker" service does
#
# Environment: SRUP_BUILD_DIR (default <repo>/build), LAB_DIR (default $SRUP_BUILD_DIR/lab),
# LAB_BROKER_HOST, LAB_FILES_HOST (default 127.0.0.1), LAB_BIND (listen address, default
# 127.0.0.1), LAB_TLS_PORT / LAB_PLAIN_PORT / LAB_FILES_PORT / LAB_FILES_TLS_PORT (default: free
# ports in 20000-60000 chosen at each init, kept in $LAB_DIR/ports.env), LAB_PLUGIN (the plugin
# .so), LAB_WRAP (a command prefix for the daemons, e.g. valgrind), LAB_SEEN_INDEX (the policy's
# seen_index, default 256), LAB_REGISTRY_HOST (default 127.0.0.1), LAB_REGISTRY_PORT,
# LAB_EXPORTER_PORT, SRUP_MQTT_EXPORTER (default /usr/bin/prometheus-mqtt-exporter).
# ID_<name> and the ports come from $LAB/*.env:
# shellcheck disable=SC2154,SC1091
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SRUP_BUILD_DIR:-$REPO/build}
LAB=${LAB_DIR:-$BUILD/lab}
TOOLS=$BUILD/tools
SRUP=$TOOLS/srup
C2=$TOOLS/srup-c2
DEV=$TOOLS/srup-device
REGISTRY=$TOOLS/srup-registry
PLUGIN=${LAB_PLUGIN:-$BUILD/plugin/srup_plugin.so}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
MOSQUITTO=${LAB_MOSQUITTO:-/usr/sbin/mosquitto}
BROKER_HOST=${LAB_BROKER_HOST:-127.0.0.1}
FILES_HOST=${LAB_FILES_HOST:-127.0.0.1}
REGISTRY_HOST=${LAB_REGISTRY_HOST:-127.0.0.1}
CONSOLE_HOST=${LAB_CONSOLE_HOST:-127.0.0.1}
BIND=${LAB_BIND:-127.0.0.1}
# Debian's prometheus-mqtt-exporter (scripts/install-deps.sh), run by `native` with the shipped
# packaging/prometheus/srup-mqtt-exporter.yaml; its HTTP endpoint only ever on 127.0.0.1.
EXPORTER=${SRUP_MQTT_EXPORTER:-/usr/bin/prometheus-mqtt-exporter}
# exporter: prometheus-mqtt-exporter's identity, a metrics_reader of the policy (no SRUP key in
# the store: it only reads $SYS/broker/srup/#).
NAMES="c2 dev1 dev2 beacon rogue rogue_server attacker registry exporter"
# Registered through srup-registry at their start (the others are added with `srup keys add`).
SELF_REGISTERED="c2 dev1 dev2 beacon"

say() { printf '[lab] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 3; }

free_port() {
	# A port in 20000-60000 that nothing listens on (never 1883, never 0).
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

load_env() {
	[ -f "$LAB/ids.env" ] && . "$LAB/ids.env"
	[ -f "$LAB/ports.env" ] && . "$LAB/ports.env"
	TLS_PORT=${LAB_TLS_PORT:-${TLS_PORT:-}}
	PLAIN_PORT=${LAB_PLAIN_PORT:-${PLAIN_PORT:-}}
	FILES_PORT=${LAB_FILES_PORT:-${FILES_PORT:-}}
	FILES_TLS_PORT=${LAB_FILES_TLS_PORT:-${FILES_TLS_PORT:-}}
	REGISTRY_PORT=${LAB_REGISTRY_PORT:-${REGISTRY_PORT:-}}
	REGISTRY_URL=https://$REGISTRY_HOST:$REGISTRY_PORT
	CONSOLE_PORT=${LAB_CONSOLE_PORT:-${CONSOLE_PORT:-}}
	EXPORTER_PORT=${LAB_EXPORTER_PORT:-${EXPORTER_PORT:-}}
}

id_of() { eval "echo \${ID_$1}"; }

# ---- init ---------------------------------------------------------------------------------------

make_ids_and_keys() {
	local n id
	mkdir -p "$LAB/keys"
	# Ids are kept across runs; a name added since the lab directory was made gets one now.
	cp "$LAB/ids.env" "$LAB/ids.env.tmp" 2>/dev/null || : >"$LAB/ids.env.tmp"
	for n in $NAMES; do
		grep -q "^ID_$n=" "$LAB/ids.env.tmp" && continue
		id=$("$SRUP" id) || die "srup id failed (is $SRUP built?)"
		echo "ID_$n=$id" >>"$LAB/ids.env.tmp"
	done
	mv "$LAB/ids.env.tmp" "$LAB/ids.env"
	for n in $NAMES; do
		if [ ! -f "$LAB/keys/$n.pem" ]; then
			"$SRUP" keygen --out "$LAB/keys/$n" >/dev/null || die "srup keygen failed"
		fi
	done
}

make_certs() {
	local c="$LAB/certs" n id
	mkdir -p "$c"
	if [ ! -f "$c/ca.crt" ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 -subj "/CN=srup-lab-ca" \
			-keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null || die "CA generation failed"
	fi
	if [ ! -f "$c/broker.crt" ]; then
		openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=broker" \
			-keyout "$c/broker.key" -out "$c/broker.csr" 2>/dev/null
		printf 'subjectAltName=DNS:broker,DNS:localhost,IP:127.0.0.1\n' >"$c/broker.ext"
		openssl x509 -req -in "$c/broker.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" \
			-CAcreateserial -days 365 -sha256 -extfile "$c/broker.ext" \
			-out "$c/broker.crt" 2>/dev/null || die "broker certificate failed"
	fi
	if [ ! -f "$c/files.crt" ]; then
		openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=files" \
			-keyout "$c/files.key" -out "$c/files.csr" 2>/dev/null
		printf 'subjectAltName=DNS:files,DNS:localhost,IP:127.0.0.1\n' >"$c/files.ext"
		openssl x509 -req -in "$c/files.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" \
			-CAcreateserial -days 365 -sha256 -extfile "$c/files.ext" \
			-out "$c/files.crt" 2>/dev/null || die "file server certificate failed"
	fi
	if [ ! -f "$c/registry.crt" ]; then
		openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=registry" \
			-keyout "$c/registry.key" -out "$c/registry.csr" 2>/dev/null
		printf 'subjectAltName=DNS:registry,DNS:broker,DNS:c2,DNS:localhost,IP:127.0.0.1\n' >"$c/registry.ext"
		openssl x509 -req -in "$c/registry.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" \
			-CAcreateserial -days 365 -sha256 -extfile "$c/registry.ext" \
			-out "$c/registry.crt" 2>/dev/null || die "registry certificate failed"
	fi
	for n in $NAMES; do
		[ -f "$c/$n.crt" ] && continue
		id=$(id_of "$n")
		# The client certificate's CN is the SRUP identity in text form (spec §5.3).
		openssl req -newkey rsa:2048 -nodes -sha256 -subj "/O=SRUP_DEVICE/CN=$id" \
			-keyout "$c/$n.key" -out "$c/$n.csr" 2>/dev/null
		openssl x509 -req -in "$c/$n.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" \
			-CAcreateserial -days 365 -sha256 -out "$c/$n.crt" 2>/dev/null ||
			die "certificate for $n failed"
	done
	chmod 600 "$c"/*.key
}

write_daemon_conf() {
	# write_daemon_conf NAME ROLE PEERS...
	local n=$1 role=$2 id
	shift 2
	id=$(id_of "$n")
	mkdir -p "$LAB/peers/$n"
	rm -f "$LAB/peers/$n"/*.pem*
	for p in "$@"; do
		# A device gets its server's key from the registry (register).
		[ "$role" != c2 ] && [ "$p" = c2 ] && continue
		cp "$LAB/keys/$p.pub.pem" "$LAB/peers/$n/$(id_of "$p").pub.pem"
	done
	{
		echo "# srup-$n: written by docker/lab.sh"
		echo "identity = $id"
		echo "role = $role"
		echo "private_key = $LAB/keys/$n.pem"
		echo "peer_keys = $LAB/peers/$n"
		if [ "$role" = c2 ]; then
			echo "broker_host = $BROKER_HOST"
			echo "broker_port = $TLS_PORT"
			echo "tls_ca = $LAB/certs/ca.crt"
			echo "tls_cert = $LAB/certs/$n.crt"
			echo "tls_key = $LAB/certs/$n.key"
			# The C2 registers itself with the registry at start (c2_check, then c2/).
			echo "registry_url = $REGISTRY_URL"
			echo "registry_ca = $LAB/certs/ca.crt"
			echo "registry_token = $("$REGISTRY" --config "$LAB/conf/registry.conf" token c2 \
				--key "$LAB/keys/c2.pub.pem")"
			# The operator console (the lab's operator decides human joins through it).
			echo "console_address = $BIND"
			echo "console_port = $CONSOLE_PORT"
			echo "console_cert = $LAB/certs/registry.crt"
			echo "console_key = $LAB/certs/registry.key"
			echo "console_operators = $LAB/conf/operators"
			echo "console_audit_log = $LAB/audit.jsonl"
			echo "console_registration_url = $REGISTRY_URL"
		else
			# broker_host, broker_port, server, tls_* and the server's key come from
			# `srup-device register` (role_daemon), which also trusts the registry's CA.
			echo "tls_ca = $LAB/certs/ca.crt"
		fi
		echo "state_file = $LAB/state/$n.state"
		echo "control_socket = $LAB/run/$n.sock"
		echo "timeout = 20"
		# The lab's devices answer every command: wait long enough to show their replies.
		[ "$role" = c2 ] && echo "reply_wait = 10"
		if [ "$role" != c2 ]; then
			echo "update_dir = $LAB/state/$n-updates"
			echo "update_ca = $LAB/certs/ca.crt"
			echo "show_file = $LAB/state/$n-show.txt"
		fi
		if [ "$role" = observer ] || [ "$n" = dev1 ]; then
			echo "beacon_socket = $LAB/run/beacon-local.sock"
		fi
		if [ "$role" = c2 ]; then
			# Where the operator sees a human-moderated join's value (-<device id> appended).
			echo "show_file = $LAB/state/c2-show"
			# A passive network tap, for the attacker (see attacker.py).
			echo "wire_log = $LAB/state/tap.log"
		fi
	} >"$LAB/conf/$n.conf"
}

write_registry_conf() {
	{
		echo "# srup-registry: written by docker/lab.sh"
		echo "listen_address = $BIND"
		echo "listen_port = $REGISTRY_PORT"
		echo "tls_cert = $LAB/certs/registry.crt"
		echo "tls_key = $LAB/certs/registry.key"
		echo "store = $LAB/store"
		# The lab's CA signs the MQTT client certificates: the broker trusts it.
		echo "ca_cert = $LAB/certs/ca.crt"
		echo "ca_key = $LAB/certs/ca.key"
		echo "identity = $ID_registry"
		echo "signing_key = $LAB/keys/registry.pem"
		echo "broker_url = mqtts://$BROKER_HOST:$TLS_PORT"
		echo "default_c2 = $ID_c2"
		echo "mode = open"
		# Every lab client comes from one address: a burst of 40, then 2 a second.
		echo "rate_limit = 120"
		echo "rate_burst = 40"
		echo "log_file = $LAB/logs/registry.jsonl"
	} >"$LAB/conf/registry.conf"
}

write_broker_conf() {
	local user
	user=$(id -un)
	{
		echo "# mosquitto for the SRUP lab: written by docker/lab.sh"
		echo "per_listener_settings false"
		echo "allow_anonymous true"
		echo "persistence false"
		echo "user $user"
		echo "log_dest file $LAB/logs/broker.log"
		echo "log_type error"
		echo "log_type warning"
		echo "log_type notice"
		echo "log_type information"
		echo "connection_messages true"
		echo
		echo "# Mutual TLS: the certificate CN is the MQTT identity (the SRUP id)."
		echo "listener $TLS_PORT $BIND"
		echo "cafile $LAB/certs/ca.crt"
		echo "certfile $LAB/certs/broker.crt"
		echo "keyfile $LAB/certs/broker.key"
		echo "require_certificate true"
		echo "use_identity_as_username true"
		echo
		echo "# Plain listener: no certificate, so no SRUP identity (policy: identity certificate),"
		echo "# whatever username is claimed. Only the attacker uses it: every SRUP publish from it"
		echo "# is dropped (no_identity)."
		echo "listener $PLAIN_PORT $BIND"
		echo
		if [ -f "$PLUGIN" ]; then
			echo "plugin $PLUGIN"
			echo "plugin_opt_store $LAB/store"
			echo "plugin_opt_audit_log $LAB/audit.jsonl"
			echo "plugin_opt_policy $LAB/conf/srup.policy"
		else
			echo "# WARNING: $PLUGIN was not built: NO SRUP ENFORCEMENT"
		fi
	} >"$LAB/conf/mosquitto.conf"
	# The shipped policy, plus the one thing this lab's C2 is trusted with: commanding joins
	# (JOIN_CMD makes it a member of the device with no answer from the device). The seen index
	# is small (LAB_SEEN_INDEX, default 256 entries) so that the attacker's flood of a few
	# hundred signed JOIN_REQs would push the C2's commands out of an index shared by all
	# senders (attack seen_flush_replay); the whole lab accepts fewer than 200 other messages.
	# A per-role seen_window above that size is left out, so the role's default follows the
	# index down (the policy refuses an explicit window larger than the index).
	local seen=${LAB_SEEN_INDEX:-256}
	{
		awk -v max="$seen" '$1 == "seen_index" { next }
			$1 == "seen_window" && $3 + 0 > max + 0 { next }
			{ print }' "$REPO/policy/srup.policy"
		echo
		echo "# lab: a small seen index (see docker/lab.sh)"
		echo "seen_index $seen"
		echo "# lab: the C2 server may command joins (the beacon joins by JOIN_CMD)"
		echo "join_command $ID_c2"
		echo "# lab: prometheus-mqtt-exporter reads \$SYS/broker/srup/# (and nothing else)"
		echo "metrics_reader $ID_exporter"
	} >"$LAB/conf/srup.policy"
}

role_init() {
	mkdir -p "$LAB" || die "cannot create $LAB"
	if [ ! -x "$SRUP" ] || [ ! -x "$C2" ] || [ ! -x "$DEV" ]; then
		die "build first: $SRUP, $C2, $DEV"
	fi
	# Ports are chosen afresh each run (a port free last time may be taken now).
	{
		echo "TLS_PORT=${LAB_TLS_PORT:-$(free_port)}"
		echo "PLAIN_PORT=${LAB_PLAIN_PORT:-$(free_port)}"
		echo "FILES_PORT=${LAB_FILES_PORT:-$(free_port)}"
		echo "FILES_TLS_PORT=${LAB_FILES_TLS_PORT:-$(free_port)}"
		echo "REGISTRY_PORT=${LAB_REGISTRY_PORT:-$(free_port)}"
		echo "CONSOLE_PORT=${LAB_CONSOLE_PORT:-$(free_port)}"
		echo "EXPORTER_PORT=${LAB_EXPORTER_PORT:-$(free_port)}"
	} >"$LAB/ports.env"
	make_ids_and_keys
	load_env
	make_certs
	# Runtime state starts fresh each run (keys and certificates are kept): the broker's key
	# store, replay marks and membership and the daemons' sequence counters belong together.
	rm -rf "$LAB/store" "$LAB/state" "$LAB/run" "$LAB/logs" "$LAB/conf" "$LAB/results" \
		"$LAB/audit.jsonl" "$LAB/files" "$LAB/metrics.prom" "$LAB/sys.json"
	mkdir -p "$LAB/store" "$LAB/state" "$LAB/run" "$LAB/logs" "$LAB/conf" "$LAB/results" \
		"$LAB/files"
	write_registry_conf
	write_daemon_conf c2 c2 dev1 dev2 beacon
	# The lab's console operator.
	[ -f "$LAB/keys/console.password" ] ||
		head -c 18 /dev/urandom | base64 >"$LAB/keys/console.password"
	chmod 600 "$LAB/keys/console.password"
	"$C2" --config "$LAB/conf/c2.conf" operator add lab <"$LAB/keys/console.password" \
		>/dev/null || die "srup-c2 operator add failed"
	write_daemon_conf dev1 device c2
	write_daemon_conf dev2 device c2
	write_daemon_conf beacon observer c2
	write_broker_conf
	if [ -f "$PLUGIN" ]; then
		local n role
		# rogue and rogue_server are registered identities an attacker holds the keys of; the
		# C2, the devices and the beacon register through srup-registry.
		for n in rogue rogue_server; do
			case $n in
				c2 | rogue_server) role=server ;;
				beacon) role=observer ;;
				*) role=device ;;
			esac
			"$SRUP" keys add --store "$LAB/store" --id "$(id_of $n)" --role $role \
				--key "$LAB/keys/$n.pub.pem" >/dev/null || die "srup keys add $n failed"
		done
	else
		say "WARNING: $PLUGIN not built: the broker runs WITHOUT the SRUP plugin"
	fi
	# Update files: a good one; its digest is published next to it for the scenario.
	head -c 65536 /dev/urandom >"$LAB/files/firmware-1.bin"
	sha256sum "$LAB/files/firmware-1.bin" | cut -d' ' -f1 >"$LAB/files/firmware-1.sha256"
	touch "$LAB/run/ready"
	say "initialised $LAB (c2=$ID_c2 dev1=$ID_dev1 dev2=$ID_dev2 beacon=$ID_beacon)"
	say "ports: tls=$TLS_PORT plain=$PLAIN_PORT files=$FILES_PORT"
}

# ---- services -------------------------------------------------------------------------------------

role_broker() {
	load_env
	exec "$MOSQUITTO" -c "$LAB/conf/mosquitto.conf"
}

role_registry() {
	load_env
	exec "$REGISTRY" --config "$LAB/conf/registry.conf" run
}

# write_exporter_conf : the shipped exporter configuration with the lab's broker, CA and the
# exporter identity's certificate (its `  server:`, `  ca_cert:`, `  client_cert:` and
# `  client_key:` lines under mqtt replaced).
write_exporter_conf() {
	awk -v server="ssl://localhost:$TLS_PORT" -v ca="$LAB/certs/ca.crt" \
		-v crt="$LAB/certs/exporter.crt" -v key="$LAB/certs/exporter.key" '
		/^  server: / { print "  server: " server; n++; next }
		/^  ca_cert: / { print "  ca_cert: " ca; n++; next }
		/^  client_cert: / { print "  client_cert: " crt; n++; next }
		/^  client_key: / { print "  client_key: " key; n++; next }
		{ print }
		END { exit n == 4 ? 0 : 1 }' "$REPO/packaging/prometheus/srup-mqtt-exporter.yaml" \
		>"$LAB/conf/srup-mqtt-exporter.yaml"
}

role_exporter() {
	load_env
	exec "$EXPORTER" -config "$LAB/conf/srup-mqtt-exporter.yaml" -listen-address 127.0.0.1 \
		-listen-port "$EXPORTER_PORT"
}

role_files() {
	load_env
	exec "$PY" "$REPO/docker/files.py" --dir "$LAB/files" --bind "$BIND" --port "$FILES_PORT" \
		--tls-port "$FILES_TLS_PORT" --cert "$LAB/certs/files.crt" --key "$LAB/certs/files.key"
}

# register_device NAME TYPE : `srup-device register` against the lab's registry (retried while
# the registry or the C2's registration is not there yet); the output is kept for the scenario.
register_device() {
	local n=$1 type=$2 out
	for _ in $(seq 1 60); do
		out=$("$DEV" register --url "$REGISTRY_URL" --ca "$LAB/certs/ca.crt" --type "$type" \
			--config "$LAB/conf/$n.conf" 2>&1) && break
		sleep 0.5
	done
	printf '%s\n' "$out" >"$LAB/results/register-$n.out"
	say "register $n: $out"
}

role_daemon() {
	load_env
	case $1 in
		device1) register_device dev1 default ;;
		device2) register_device dev2 default ;;
		beacon) register_device beacon observer ;;
	esac
	# LAB_WRAP runs the daemons under a tool, e.g. LAB_WRAP="valgrind --leak-check=full".
	# shellcheck disable=SC2086
	case $1 in
		c2) exec ${LAB_WRAP:-} "$C2" --config "$LAB/conf/c2.conf" run ;;
		device1) exec ${LAB_WRAP:-} "$DEV" run --config "$LAB/conf/dev1.conf" ;;
		device2) exec ${LAB_WRAP:-} "$DEV" run --config "$LAB/conf/dev2.conf" ;;
		beacon) exec ${LAB_WRAP:-} "$DEV" run --config "$LAB/conf/beacon.conf" ;;
	esac
}

# ---- scenario -------------------------------------------------------------------------------------

c2ctl() { "$C2" --config "$LAB/conf/c2.conf" "$@"; }
devctl() {
	local n=$1
	shift
	"$DEV" ctl --config "$LAB/conf/$n.conf" "$@"
}

# flow NAME EXPECTED-REGEX COMMAND... : run it, record PASS/FAIL with its output.
flow() {
	local name=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	out=$(printf '%s' "$out" | grep -v '^\[lab\]' | tr '\n' ' ')
	if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -Eq -- "$want"; then
		out=$(printf '%s' "$out" | cut -c1-160)
		printf 'PASS\t%s\t%s\n' "$name" "$out" >>"$LAB/results/flows.tsv"
		say "flow $name: PASS ($out)"
		return 0
	fi
	out=$(printf '%s' "$out" | cut -c1-160)
	printf 'FAIL\t%s\trc=%d %s\n' "$name" "$rc" "$out" >>"$LAB/results/flows.tsv"
	say "flow $name: FAIL rc=$rc ($out)"
	return 1
}

# flow_refused NAME EXPECTED-REGEX COMMAND... : the command must fail (exit 1) with that output.
flow_refused() {
	local name=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	out=$(printf '%s' "$out" | grep -v '^\[lab\]' | tr '\n' ' ' | cut -c1-160)
	if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -Eq -- "$want"; then
		printf 'PASS\t%s\t%s\n' "$name" "$out" >>"$LAB/results/flows.tsv"
		say "flow $name: PASS ($out)"
		return 0
	fi
	printf 'FAIL\t%s\trc=%d %s\n' "$name" "$rc" "$out" >>"$LAB/results/flows.tsv"
	say "flow $name: FAIL rc=$rc ($out)"
	return 1
}

# The operator of a human-moderated join who is shown a different value, and refuses.
operator_reject() {
	# Refused through the console's HTTP API.
	local dev=$1
	console_op --device "$dev" --decision refuse
}

# console_op ARGS... : docker/console_operator.py against srup-c2's console, as the lab operator.
console_op() {
	"$PY" "$REPO/docker/console_operator.py" --url "https://$CONSOLE_HOST:$CONSOLE_PORT" \
		--ca "$LAB/certs/ca.crt" --user lab --password-file "$LAB/keys/console.password" \
		--srup "$SRUP" "$@"
}

wait_ready() {
	# Every daemon answers on its control socket and is connected.
	local n
	for n in c2 dev1 dev2 beacon; do
		for _ in $(seq 1 100); do
			if [ "$n" = c2 ]; then
				c2ctl status 2>/dev/null | grep -q "connected=1" && break
			else
				devctl "$n" status 2>/dev/null | grep -q "connected=1" && break
			fi
			sleep 0.2
		done
	done
}

# The "human" of a human-moderated join, at the console: waits for the join to be pending, looks
# at the device (its show file) and picks, among the console's pictographs, the one the device
# shows; the console approves only that. If the device shows none of them, refuse.
operator_approve() {
	local dev=$1 devname=$2
	say "operator: device shows $(sed -n 's/^phrase //p' "$LAB/state/$devname-show.txt" \
		2>/dev/null)"
	console_op --device "$dev" --show "$LAB/state/$devname-show.txt" --decision approve
}

# cat_rc FILE RC : print FILE and exit with RC (replays a background command's outcome).
cat_rc() {
	cat "$1"
	return "$2"
}

member_is() {
	# member_is DEV 0|1 : the C2's view of the membership, once the C2 has processed what the
	# device sent (up to 10 s: containers on a shared machine can be slow).
	for _ in $(seq 1 50); do
		c2ctl status | grep "^peer $1 member=$2 " && return 0
		sleep 0.2
	done
	c2ctl status | grep "^peer $1 "
	return 1
}

role_scenario() {
	load_env
	: >"$LAB/results/flows.tsv"
	wait_ready
	local url="http://$FILES_HOST:$FILES_PORT"
	local digest bad
	digest=$(cat "$LAB/files/firmware-1.sha256")
	bad=$(printf '%s' "$digest" | tr '0-9a-f' 'f0-9a-e' | cut -c1-64)

	say "---- registration (srup-registry)"
	flow register_c2 "^200" curl -s -o /dev/null -w '%{http_code}' --cacert "$LAB/certs/ca.crt" \
		"$REGISTRY_URL/KeyEx/register/c2_check/$ID_c2"
	flow register_dev1 "OK registered $ID_dev1" cat "$LAB/results/register-dev1.out"
	flow register_dev2 "OK registered $ID_dev2" cat "$LAB/results/register-dev2.out"
	flow register_beacon "OK registered $ID_beacon" cat "$LAB/results/register-beacon.out"
	say "---- joins"
	flow join_cmd_beacon "IDENTIFICATION_RESPONSE" c2ctl send join_cmd "$ID_beacon"
	flow simple_join_dev1 "JOIN_SUCCESS" devctl dev1 join simple
	flow id_request_dev1 "IDENTIFICATION_RESPONSE .*id=$ID_dev1" c2ctl send id_request "$ID_dev1"
	devctl dev2 join hm >"$LAB/results/dev2-hm.out" 2>&1 &
	local hm_pid=$!
	flow hm_join_operator "JOIN_SUCCESS" operator_approve "$ID_dev2" dev2
	wait $hm_pid
	flow hm_join_dev2 "JOIN_SUCCESS" cat "$LAB/results/dev2-hm.out"
	say "what the operator compared (device dev2 and the C2 show the same):"
	say "  $(sed -n 's/^phrase //p' "$LAB/state/dev2-show.txt" 2>/dev/null)"
	cat "$LAB/state/dev2-show.txt.ansi" >&2 2>/dev/null

	say "---- update"
	flow update_ok "ACTIVATE_SUCCESS" c2ctl send update "$ID_dev1" "$url/firmware-1.bin" "$digest"
	flow update_https "ACTIVATE_SUCCESS" \
		c2ctl send update "$ID_dev2" "https://$FILES_HOST:$FILES_TLS_PORT/firmware-1.bin" "$digest"
	flow activate_without_update "ACTIVATE_FAIL" c2ctl send activate "$ID_dev1"
	flow update_bad_digest "UPDATE_FAIL_DIGEST" \
		c2ctl send update "$ID_dev1" "$url/firmware-1.bin" "$bad"
	flow update_http_error "UPDATE_FAIL_HTTP_ERROR http_status=404" \
		c2ctl send update "$ID_dev1" "$url/no-such-firmware.bin" "$digest"

	say "---- actions and data"
	flow action_success "ACTION_SUCCESS" c2ctl send action "$ID_dev1" 1
	flow action_fail "ACTION_FAIL" c2ctl send action "$ID_dev1" 3
	flow action_unknown "ACTION_UNKNOWN" c2ctl send action "$ID_dev2" 99
	flow data_c2_to_device "ECHO hello-device" c2ctl send data "$ID_dev2" ECHO hello-device
	flow data_type_unknown "DATA_TYPE_UNKNOWN" c2ctl send data "$ID_dev1" NO_SUCH_ID x
	flow data_device_to_c2_send "OK sent" devctl dev1 data TEMPERATURE 21.5
	flow data_device_to_c2 "TEMPERATURE 21.5" c2ctl wait-data "$ID_dev1" TEMPERATURE
}

# key_active ID : the key store lists ID's key as active.
key_active() {
	"$SRUP" keys list --store "$LAB/store" | grep -P "^$1\t[a-z]+\tactive\t"
}

role_scenario_leave() {
	load_env
	# The attacker took over the C2's client id (retransmit_*): the C2 reconnects.
	wait_ready
	say "---- after the attacks: the forged maximum sequence ID must not have silenced the C2"
	flow no_dos_after_forgery "ACTION_SUCCESS" c2ctl send action "$ID_dev1" 1
	say "---- a stranger server's DEREGISTER_CMD / TERMINATE_CMD changed nothing"
	flow stranger_left_dev1_key "active" key_active "$ID_dev1"
	flow stranger_left_c2_key "active" key_active "$ID_c2"
	flow data_device_to_c2_after_attacks_send "OK sent" devctl dev1 data TEMPERATURE 22.5
	flow data_device_to_c2_after_attacks "TEMPERATURE 22.5" c2ctl wait-data "$ID_dev1" TEMPERATURE
	say "---- leaving and the observed join"
	flow resign_dev1 "OK left" devctl dev1 resign
	flow resign_dev1_c2_view "member=0" member_is "$ID_dev1" 0
	# Someone near the beacon shows it a wrong value for dev1 first: it must not block the join.
	"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(("PROVE %s %s\n" % (sys.argv[2], "0" * 32)).encode())' \
		"$LAB/run/beacon-local.sock" "$ID_dev1" || say "could not reach the beacon socket"
	flow observed_join_dev1 "JOIN_SUCCESS" devctl dev1 join observed "$ID_beacon"
	flow after_observed_join "ACTION_SUCCESS" c2ctl send action "$ID_dev1" 2
	flow terminate_dev1 "TERMINATE_CMD" c2ctl send terminate "$ID_dev1"
	sleep 1
	flow terminate_dev1_device_view "joined=0" devctl dev1 status
	devctl dev1 join hm >"$LAB/results/dev1-hm.out" 2>&1 &
	local hm_pid=$!
	flow hm_join_operator_rejects "JOIN_REFUSED" operator_reject "$ID_dev1"
	wait $hm_pid
	flow_refused hm_join_refused_dev1 "ERR JOIN_REFUSED" cat_rc "$LAB/results/dev1-hm.out" $?
	flow deregister_req_dev2 "OK left" devctl dev2 deregister
	flow deregister_req_c2_view "member=0" member_is "$ID_dev2" 0
	flow deregister_req_store "status: revoked" "$SRUP" keys show --store "$LAB/store" --id "$ID_dev2"
	flow deregister_cmd_beacon "DEREGISTER_CMD" c2ctl send deregister "$ID_beacon"
	sleep 1
	# The beacon either processed DEREGISTER_CMD (joined=0) or the broker, which revoked its key,
	# closed its connection before delivering it (connected=0): either way it is out.
	flow deregister_cmd_beacon_view "joined=0|connected=0" devctl beacon status
	flow deregister_cmd_store "status: revoked" "$SRUP" keys show --store "$LAB/store" --id "$ID_beacon"
}

role_attacker() {
	load_env
	"$PY" "$REPO/docker/attacker.py" --lab "$LAB" --host "$BROKER_HOST" \
		--tls-port "$TLS_PORT" --plain-port "$PLAIN_PORT" --srup "$SRUP" \
		--c2 "$C2" --phase "${1:-main}"
}

role_registry_attacker() {
	load_env
	"$PY" "$REPO/docker/registry_attacker.py" --lab "$LAB" --url "$REGISTRY_URL"
}

# role_metrics : the exporter's scrape ($LAB/metrics.prom) and the broker's retained
# $SYS/broker/srup/# as the exporter's identity reads them ($LAB/sys.json), at the same moment
# (docker/lab_metrics.py waits until they agree). Without an exporter (compose, or the binary
# missing) only sys.json.
role_metrics() {
	load_env
	local port=$EXPORTER_PORT
	[ -f "$LAB/results/exporter.txt" ] && port=
	if [ -n "${LAB_COMPOSE:-}" ]; then
		port=
		exporter_note "the compose lab runs no metrics exporter: broker values only (sys.json)"
	fi
	"$PY" "$REPO/docker/lab_metrics.py" --lab "$LAB" --host "$BROKER_HOST" --tls-port "$TLS_PORT" \
		${port:+--exporter-port "$port"} \
		--config "$REPO/packaging/prometheus/srup-mqtt-exporter.yaml" ||
		say "metrics: the exporter's scrape and the broker's values were not read or differ (see above)"
}

role_summary() {
	load_env
	"$PY" "$REPO/docker/summary.py" --lab "$LAB"
}

# ---- native: everything on loopback -----------------------------------------------------------

PIDS=""
stop_all() {
	local p
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	PIDS=""
}

start_bg() {
	# start_bg NAME ROLE
	"$0" "$2" >"$LAB/logs/$1.log" 2>&1 &
	PIDS="$PIDS $!"
}

wait_port() {
	# wait_port PORT [PID] : PORT accepts connections; fails early once PID has exited.
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# start_servers : the broker and the file server up on their ports (0), or why not (1).
start_servers() {
	local broker files registry
	start_bg broker broker
	broker=$!
	if ! wait_port "$TLS_PORT" "$broker" || ! wait_port "$PLAIN_PORT" "$broker"; then
		cat "$LAB/logs/broker.log" >&2
		say "broker did not start"
		return 1
	fi
	start_bg files files
	files=$!
	if ! wait_port "$FILES_PORT" "$files" || ! wait_port "$FILES_TLS_PORT" "$files"; then
		cat "$LAB/logs/files.log" >&2
		say "file server did not start"
		return 1
	fi
	start_bg registry registry
	registry=$!
	if ! wait_port "$REGISTRY_PORT" "$registry"; then
		cat "$LAB/logs/registry.log" >&2
		say "the registry did not start"
		return 1
	fi
}

# exporter_note TEXT : what became of the exporter, for the summary (and loudly in the log).
exporter_note() {
	say "$*"
	printf '%s\n' "$*" >"$LAB/results/exporter.txt"
}

# start_exporter : prometheus-mqtt-exporter up and serving /metrics on 127.0.0.1:EXPORTER_PORT
# (a fresh port if another program took it), or a loud note of why not; never fatal.
start_exporter() {
	local pid try
	if [ ! -x "$EXPORTER" ]; then
		exporter_note "WARNING: $EXPORTER is missing: the lab runs WITHOUT the metrics" \
			"exporter (scripts/install-deps.sh installs prometheus-mqtt-exporter)"
		return 1
	fi
	write_exporter_conf || {
		exporter_note "ERROR: cannot write $LAB/conf/srup-mqtt-exporter.yaml"
		return 1
	}
	for try in 1 2 3; do
		start_bg exporter exporter
		pid=$!
		# It serves /metrics once its MQTT connection is up.
		for _ in $(seq 1 150); do
			if curl -sf -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics"; then
				say "exporter: http://127.0.0.1:$EXPORTER_PORT/metrics"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		if [ -n "${LAB_EXPORTER_PORT:-}" ] || [ "$try" -ge 3 ] ||
			! grep -q "address already in use" "$LAB/logs/exporter.log"; then
			break
		fi
		EXPORTER_PORT=$(free_port)
		sed -i "s/^EXPORTER_PORT=.*/EXPORTER_PORT=$EXPORTER_PORT/" "$LAB/ports.env"
		say "exporter: port taken, trying $EXPORTER_PORT"
	done
	cat "$LAB/logs/exporter.log" >&2
	exporter_note "ERROR: $EXPORTER did not serve /metrics (logs/exporter.log)"
	EXPORTER_PORT=
	sed -i "s/^EXPORTER_PORT=.*/EXPORTER_PORT=/" "$LAB/ports.env"
	return 1
}

role_native() {
	local try
	trap stop_all EXIT
	trap 'exit 130' INT TERM
	# Ports are free when chosen, but on a shared machine another program may take one before
	# the broker, the file server or the registry binds it: then start again on fresh ports
	# (unless the ports were given).
	for try in 1 2 3; do
		role_init || exit 3
		load_env
		start_servers && break
		stop_all
		if [ -n "${LAB_TLS_PORT:-}${LAB_PLAIN_PORT:-}${LAB_FILES_PORT:-}${LAB_FILES_TLS_PORT:-}${LAB_REGISTRY_PORT:-}" ] ||
			[ "$try" -ge 3 ]; then
			die "could not start the broker, the file server and the registry"
		fi
		say "starting again on other ports"
	done
	start_exporter
	start_bg c2 c2
	# Devices register once the registry knows their C2 (it registers itself at start).
	for _ in $(seq 1 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$LAB/certs/ca.crt" \
			"$REGISTRY_URL/KeyEx/register/c2_check/$ID_c2")" = 200 ] && break
		sleep 0.1
	done
	start_bg dev1 device1
	start_bg dev2 device2
	start_bg beacon beacon
	run_all
	local rc=$?
	stop_all
	return $rc
}

run_all() {
	local sniff rc
	# An eavesdropper subscribes wherever the broker lets it for the whole run. Started
	# directly (not through a function) so that $! is python itself and the kill reaches it.
	"$PY" "$REPO/docker/attacker.py" --lab "$LAB" --host "$BROKER_HOST" \
		--tls-port "$TLS_PORT" --plain-port "$PLAIN_PORT" --phase sniff \
		>"$LAB/logs/sniffer.log" 2>&1 &
	sniff=$!
	PIDS="$PIDS $sniff"
	role_scenario
	role_attacker main
	role_scenario_leave
	role_attacker after-leave
	role_registry_attacker
	kill "$sniff" 2>/dev/null
	wait "$sniff" 2>/dev/null
	role_metrics
	role_summary
	rc=$?
	return $rc
}

# compose: services other than the broker wait for init (done by the broker service).
wait_init() {
	for _ in $(seq 1 300); do
		[ -f "$LAB/run/ready" ] && return 0
		sleep 0.2
	done
	die "lab not initialised (is the broker service up?)"
}

case ${1:-} in
	init) role_init ;;
	broker) role_broker ;;
	registry)
		[ -n "${LAB_COMPOSE:-}" ] && wait_init
		role_registry
		;;
	compose-broker)
		# The registry writes the broker's store: it runs on the broker's host.
		role_init && { "$0" registry & } && role_broker
		;;
	files)
		[ -n "${LAB_COMPOSE:-}" ] && wait_init
		role_files
		;;
	c2 | device1 | device2 | beacon)
		[ -n "${LAB_COMPOSE:-}" ] && wait_init
		role_daemon "$1"
		;;
	scenario) role_scenario && role_scenario_leave ;;
	attacker) role_attacker "${2:-main}" ;;
	registry-attacker) role_registry_attacker ;;
	summary) role_summary ;;
	exporter) role_exporter ;;
	metrics) role_metrics ;;
	native) role_native ;;
	compose-run)
		# The compose "attacker" service: the other services are already up.
		wait_init
		load_env
		for _ in $(seq 1 150); do
			[ -S "$LAB/run/c2.sock" ] && [ -S "$LAB/run/beacon.sock" ] && break
			sleep 0.2
		done
		run_all
		;;
	*)
		sed -n '3,/^# ID_/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 3
		;;
esac
