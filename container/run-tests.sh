#!/usr/bin/env bash
# `make container-test`: functional tests and one lab scenario inside a privileged container
# from localhost/dvr-agent:latest, as a CI system runs them: nothing from the host but the
# kernel. The tests, pytest, Python, Open vSwitch, RabbitMQ and iproute2 are the image's
# (container/Containerfile puts the test suite in /usr/share/dvr-agent/tests).
#
# The subset (README "The image, and tests in a privileged container" says why): every
# driver against the kernel and Open vSwitch; then `dvr-lab demo`, three hosts with their
# agents, RabbitMQ and dvr-server, and real traffic. Pass pytest arguments to run something
# else: container/run-tests.sh tests/functional (all of it), ... -k ovsdb
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${DVR_IMAGE:-localhost/dvr-agent:latest}
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
ULIMITS=(--ulimit nofile=16384:16384 --ulimit nproc=4096:4096)
SUBSET=(
  tests/functional/test_namespaces.py
  tests/functional/test_netlink_bulk.py tests/functional/test_netlink_ethtool.py
  tests/functional/test_netlink_links.py tests/functional/test_netlink_routing.py
  tests/functional/test_netlink_sysctl.py
  tests/functional/test_nftables.py
  tests/functional/test_openflow.py tests/functional/test_openflow_canonical.py
  tests/functional/test_compiled_flows_canonical.py
  tests/functional/test_ovsdb.py tests/functional/test_ovsdb_monitor.py
  tests/functional/test_ovs_fixture.py tests/functional/test_leak_guard.py
)
[ $# -gt 0 ] && SUBSET=("$@")

"${PODMAN[@]}" image exists "$IMAGE" || { echo "container-test: no $IMAGE (make image)" >&2; exit 2; }
name=dvr-container-test-$$
trap '"${PODMAN[@]}" rm --force --time 5 "$name" >/dev/null 2>&1 || true' EXIT
# the same commands as on a host (tox.ini), with the image's virtualenv
"${PODMAN[@]}" run --rm --name "$name" --privileged --network none "${ULIMITS[@]}" \
  --workdir /usr/share/dvr-agent "$IMAGE" bash -euc '
    export PATH=/opt/dvr-agent/bin:$PATH
    python tests/isolated.py pytest -p no:cacheprovider "$@"
    echo "== lab scenario: dvr-lab demo (3 hosts, east-west, SNAT, floating IP)"
    dvr-lab demo --down' container-test "${SUBSET[@]}"
