"""`dvr-lab down` cleans up everything, even after an `up` killed half-way.

Runs before the shared lab of the other modules is made (file order), and refuses to run
if a lab is up, rather than tearing it down under another test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dvr_agent.lab import layout


def test_down_after_an_up_killed_half_way_leaves_nothing():
    assert not os.path.exists(layout.state_file()), "a lab is up: this test must run alone"
    up = subprocess.Popen([sys.executable, "-m", "dvr_agent.lab.main", "up"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    time.sleep(4)  # somewhere in the hosts, the broker or the agents
    up.kill()
    up.wait()
    down = subprocess.run([sys.executable, "-m", "dvr_agent.lab.main", "down"],
                          capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stderr
    assert not [n for n in os.listdir("/run/netns") if layout.is_lab_namespace(n)]
    assert not os.path.exists(layout.BASE_DIR)
    # the session's leak guard checks processes, devices and namespaces once more
