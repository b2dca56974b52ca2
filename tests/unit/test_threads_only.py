"""The agent's processes run on threads: importing them never loads eventlet."""

import subprocess
import sys

AGENT_STACK = [
    "dvr_agent",
    "dvr_agent.rpc.transport",
    "oslo_messaging",
    "ovs.db.idl",
    "ovs.poller",
    "ovsdbapp.backend.ovs_idl.connection",
    "pyroute2",
]


def _imports_eventlet(modules: list[str]) -> str:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print('eventlet' in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith('eventlet')))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_agent_stack_never_imports_eventlet():
    assert _imports_eventlet(AGENT_STACK) == "False []"


def test_eventlet_import_is_refused_with_a_clear_reason():
    code = "import dvr_agent\ntry:\n import eventlet\nexcept ImportError as e:\n print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "threads only" in out


def test_without_the_guard_ovs_would_import_eventlet():
    """Proves the guard matters: python-ovs alone pulls eventlet in when it is installed."""
    assert _imports_eventlet(["ovs.poller"]).startswith("True")
