"""The fault scenarios of tests/lab/test_faults.py (broker outage, ovs-vswitchd, ovsdb-server
and dvr-server restarts, with traffic measured) on hosts that are systemd containers: the
same test functions, collected again here for this directory's ``lab``. In `make
container-lab` only (CI time): the namespace lab runs them in `make test`."""

from tests.lab.test_faults import *  # noqa: F403
