#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install-deps.sh - installs the Debian 12 packages srup-broker builds, tests and runs its lab
# with (the list is fixed in the project's contract). Idempotent: apt-get skips what is there.
# Run as root (or through sudo). Touches nothing but the package database.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config libssl-dev uuid-dev check liblmdb-dev lmdb-utils
	mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev libcurl4-openssl-dev
	python3 python3-paho-mqtt python3-cryptography clang clang-format libclang-rt-14-dev valgrind openssl docker-compose
	iproute2 jq procps netcat-openbsd libjansson-dev libsystemd-dev systemd libmicrohttpd-dev curl
	libqrencode-dev libcrypt-dev zlib1g-dev zbar-tools chromium chromium-driver python3-selenium
	debootstrap dpkg-dev podman podman-compose runc golang-github-containernetworking-plugin-dnsname
	catatonit prometheus-mqtt-exporter
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "install-deps.sh: must run as root (or with sudo available)" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	"${PACKAGES[@]}"
echo "install-deps.sh: ${#PACKAGES[@]} packages present"
