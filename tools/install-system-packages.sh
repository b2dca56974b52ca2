#!/usr/bin/env bash
# Install the Debian packages dvr-agent, its tests and its lab need (Debian 12 / Ubuntu, as root).
# Quick and silent when everything is already there: only missing packages are installed.
set -euo pipefail

packages=(
  openvswitch-switch      # ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl
  rabbitmq-server         # the RPC broker (tests start private nodes)
  nftables iproute2 ethtool tcpdump iputils-ping arping socat
  util-linux procps psmisc
  postgresql              # the server's database tests also run on PostgreSQL
  python3-venv python3-dev gcc
  podman runc debootstrap # `make image`, container-test, the systemd tests, the container lab
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-packages: run as root (apt-get needs it)" >&2
  exit 2
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start system-wide daemons: the tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
