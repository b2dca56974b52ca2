"""The DVR parity scenarios (issue 10) on hosts that are systemd containers running the
shipped units: the very test functions of tests/lab/test_parity_*.py, collected here
again so that they get this directory's ``lab`` (the containers backend). One copy of
each scenario; a new one in those files runs on both backends."""

from tests.lab.test_parity_mobility import *  # noqa: F403
from tests.lab.test_parity_modes import *  # noqa: F403
from tests.lab.test_parity_mtu import *  # noqa: F403
from tests.lab.test_parity_routes_vips import *  # noqa: F403
