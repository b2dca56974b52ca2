"""What the agent imports to start: pyroute2 only when a driver first needs it.

pyroute2's package pulls in ndb and ipdb (81 ms of the agent's ~340 ms of imports),
and nothing on a start's path uses it (dvr_agent/drivers/netlink_pyroute2.py).
"""

import json
import subprocess
import sys


def _loaded_after(code: str) -> list[str]:
    script = (f"import json, sys\n{code}\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'pyroute2')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def test_starting_the_agent_does_not_import_pyroute2():
    assert _loaded_after("import dvr_agent.agent.main") == []


def test_the_drivers_import_it_when_they_use_it():
    assert "pyroute2.ethtool.ioctl" in _loaded_after(
        "from dvr_agent.drivers import ethtool\n"
        "try:\n    ethtool.tx_checksum_off(None, 'no-such-dev0')\nexcept Exception:\n    pass")
