"""`dvr-lab down` cleans up everything, even after an `up` killed half-way.

This lab has a prefix and a directory of its own, so it can be made and broken while the
shared lab of the other tests is up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

PREFIX, BASE = "crash-", "/run/dvr-lab-crash"
ENV = {**os.environ, "DVR_LAB_PREFIX": PREFIX, "DVR_LAB_DIR": BASE}


def test_down_after_an_up_killed_half_way_leaves_nothing():
    up = subprocess.Popen([sys.executable, "-m", "dvr_agent.lab.main", "up"], env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    time.sleep(4)  # somewhere in the hosts, the broker or the agents
    up.kill()
    up.wait()
    assert any(n.startswith(PREFIX) for n in os.listdir("/run/netns")), "killed too early"
    down = subprocess.run([sys.executable, "-m", "dvr_agent.lab.main", "down"], env=ENV,
                          capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stderr
    assert not [n for n in os.listdir("/run/netns") if n.startswith(PREFIX)]
    assert not os.path.exists(BASE)
    # the session's leak guard checks processes, devices and namespaces once more
