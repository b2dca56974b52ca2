# dvr-agent: `make demo`, `make test` and `make bench` work on a fresh Debian 12 / Ubuntu
# machine, as root.
SHELL := /bin/bash
VENV := .venv
PIP := $(VENV)/bin/pip
INSTALLED := $(VENV)/.installed

.PHONY: setup system-packages venv demo test lint unit functional lab load systemd \
	container-lab image container-test bench bench-quick clean

setup: system-packages venv

system-packages:
	@tools/install-system-packages.sh

venv: $(INSTALLED)

$(INSTALLED): setup.cfg pyproject.toml
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@$(PIP) install -q -e '.[test]' tox
	@touch $@

demo: setup
	@if [ -x $(VENV)/bin/dvr-lab ]; then $(VENV)/bin/dvr-lab demo; \
	else echo "make demo: not yet - the multi-host lab lands with the lab issue"; fi

# every layer; then, on the image: the units under systemd, the container lab, and a smoke
# subset of the functional tests (namespaces, links, OpenFlow, OVSDB monitor) and the demo
# inside a privileged container (all the driver tests: make container-test; CI time)
CONTAINER_SMOKE := tests/functional/test_namespaces.py tests/functional/test_netlink_links.py \
	tests/functional/test_openflow.py tests/functional/test_ovsdb_monitor.py
test: setup image
	$(VENV)/bin/tox run -e all,deploy
	container/run-tests.sh $(CONTAINER_SMOKE)

lint unit functional lab: setup
	$(VENV)/bin/tox run -e $@

# dvr-server under a large cloud's load for 10 minutes, on SQLite and on PostgreSQL (not a
# test: it prints numbers and writes benchmarks/results/load-*.json; docs/reliability.md).
LOAD_ARGS ?= --agents 500 --duration 600 --ctl-rate 20
load: setup
	mkdir -p benchmarks/results
	$(VENV)/bin/python tests/isolated.py $(VENV)/bin/python benchmarks/cloud_load.py \
		$(LOAD_ARGS) --json benchmarks/results/load-sqlite.json
	$(VENV)/bin/python tests/isolated.py $(VENV)/bin/python benchmarks/cloud_load.py \
		$(LOAD_ARGS) --postgres --json benchmarks/results/load-postgresql.json

systemd container-lab: image
	$(VENV)/bin/tox run -e $@

# localhost/dvr-agent:latest (container/Containerfile); the debootstrap base is made once
image: setup
	@container/build-image.sh

# functional tests and a lab scenario in a privileged container from the image
container-test: image
	container/run-tests.sh

# benchmarks/README.md: the standard set (< 20 min) writes benchmarks/results/latest.json
bench: setup
	$(VENV)/bin/python tests/isolated.py $(VENV)/bin/python -m benchmarks.run

bench-quick: setup
	$(VENV)/bin/python tests/isolated.py $(VENV)/bin/python -m benchmarks.run --quick \
		--output benchmarks/results/quick.json

clean:
	rm -rf .tox build dist *.egg-info
