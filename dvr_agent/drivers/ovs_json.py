"""python-ovs's C JSON parser, borrowed from the distribution when pip built none.

Every byte the OVSDB server sends (the replica at start, each update after) goes through
``ovs.json.Parser``. PyPI has python-ovs only as an sdist, and it builds its C parser
(``ovs._json``) only where libopenvswitch's headers are installed, which Debian and
Ubuntu do not package: a pip-installed agent parses in pure Python. Measured on the
benchmark machine: an 880 KB monitor reply (2,600 interfaces, the replica of a host with
~1,000 routers) takes 0.73 s in pure Python and 0.04 s in C; in a py-spy profile of a
warm restart with 300 routers, the thread that parses was 16 % of the agent's samples
(benchmarks/README.md, fix 20).

The distribution's ``python3-openvswitch`` (a dependency of ``openvswitch-common``, so
present on every host whose Open vSwitch came from the distribution) ships that parser
compiled for the system's interpreter, and ``ovs/json.py`` has been the same file since
2.x. So when our ``ovs`` has no C parser, we load the distribution's if it was built
for this interpreter's ABI and parses a sample correctly, and tell ``ovs.json`` to use it
(its own switch, ``PARSER``). Otherwise nothing changes: the pure-Python parser is
correct, only slower, and the agent says so in its log.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import os
import sys

import ovs
import ovs.json

LOG = logging.getLogger(__name__)

DIST_PACKAGES = ("/usr/lib/python3/dist-packages",)
SAMPLE = '{"id":1,"result":{"Interface":{"u":{"new":{"ofport":3,"name":"qr-x",' \
         '"options":["map",[["peer","y"]]]}}}},"error":null}'
SAMPLE_VALUE = {"id": 1, "result": {"Interface": {"u": {"new": {
    "ofport": 3, "name": "qr-x", "options": ["map", [["peer", "y"]]]}}}}, "error": None}


def use_c_parser(search: tuple[str, ...] = DIST_PACKAGES) -> str:
    """Make ``ovs.json`` parse in C if it can; which parser it uses, for the log."""
    if ovs.json.PARSER == ovs.json.PARSER_C:
        return f"C ({getattr(ovs._json, '__file__', 'python-ovs')})"
    for directory in search:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "ovs", f"_json{suffix}")
            if os.path.exists(path) and _adopt(path):
                return f"C ({path})"
    return "pure Python (slow at scale: no compiled ovs._json for this interpreter)"


def _adopt(path: str) -> bool:
    try:
        spec = importlib.util.spec_from_file_location("ovs._json", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if _parse(module.Parser) != SAMPLE_VALUE:
            raise ValueError("it parsed a sample differently from ovs.json")
    except (ImportError, OSError, ValueError, AttributeError, TypeError) as exc:
        LOG.warning("not using the OVSDB JSON parser at %s: %s", path, exc)
        return False
    sys.modules["ovs._json"] = module
    ovs._json = module
    # what ovs.json's own ``import ovs._json`` would have bound, had it succeeded
    ovs.json.ovs = ovs
    ovs.json.PARSER = ovs.json.PARSER_C
    return True


def _parse(parser_type) -> object:
    """``SAMPLE`` fed in pieces, as ovs.jsonrpc feeds what it receives."""
    parser = parser_type(check_trailer=True)
    for i in range(0, len(SAMPLE), 7):
        parser.feed(SAMPLE[i:i + 7])
    return parser.finish()
