"""The compiler and the models stay pure: no drivers, RPC, oslo, sockets, time or logging."""

import ast
import pathlib

import dvr_agent

FORBIDDEN = ("dvr_agent.drivers", "dvr_agent.rpc.transport", "dvr_agent.reconcile",
             "oslo", "socket", "time", "logging", "subprocess", "pyroute2", "ovs", "ovsdbapp",
             "threading", "os")
ROOT = pathlib.Path(dvr_agent.__file__).parent


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_compiler_models_and_facts_import_nothing_impure():
    files = [p for pkg in ("compiler", "models", "facts") for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            bad = [f for f in FORBIDDEN if name == f or name.startswith(f + ".")]
            assert not bad, f"{path.relative_to(ROOT)} imports {name}"
