"""Borrowing the distribution's compiled OVSDB JSON parser (dvr_agent/drivers/ovs_json.py).

Each case runs in a fresh interpreter: adopting the parser changes ``ovs.json`` for the
whole process, and the other cases must start from python-ovs as pip installed it.
"""

import glob
import json
import subprocess
import sys
import textwrap

from dvr_agent.drivers import ovs_json

# make setup installs openvswitch-switch, whose openvswitch-common needs python3-openvswitch
DIST_PARSERS = glob.glob(f"{ovs_json.DIST_PACKAGES[0]}/ovs/_json.cpython-*.so")


def run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_the_distributions_parser_is_adopted_and_parses_like_ovs_json():
    assert DIST_PARSERS, "python3-openvswitch's compiled parser is missing (make setup)"
    result = run("""
        import json, ovs.json
        from dvr_agent.drivers import ovs_json
        rows = {f"row{i}": {"new": {"name": f"qr-{i}", "ofport": i, "error": ["set", []],
                "external_ids": ["map", [["iface-id", "\\u00e9x"], ["k", "v\\\\n"]]]}}
                for i in range(300)}
        text = json.dumps({"id": None, "method": "update", "params": ["x", rows]})
        pure = ovs.json.from_string(text)
        was = ovs.json.PARSER
        used = ovs_json.use_c_parser()
        parser = ovs.json.Parser()
        for i in range(0, len(text), 4096):
            parser.feed(text[i:i + 4096])
        print(json.dumps({"was": was, "now": ovs.json.PARSER, "used": used,
                          "type": type(parser).__module__, "same": parser.finish() == pure,
                          "again": ovs_json.use_c_parser() == used}))
    """)
    assert result["was"] == "PYTHON", "pip's python-ovs had a C parser: this module is moot"
    assert result["now"] == "C" and result["type"] == "ovs._json"
    assert result["used"].startswith("C (/usr/lib/python3/dist-packages/ovs/_json")
    assert result["same"] and result["again"]


def test_nothing_found_leaves_the_pure_python_parser(tmp_path):
    result = run(f"""
        import json, ovs.json
        from dvr_agent.drivers import ovs_json
        used = ovs_json.use_c_parser(({str(tmp_path)!r},))
        print(json.dumps({{"used": used, "now": ovs.json.PARSER,
                          "parses": ovs.json.from_string('[1, "a"]') == [1, "a"]}}))
    """)
    assert result == {"used": result["used"], "now": "PYTHON", "parses": True}
    assert result["used"].startswith("pure Python")


def test_a_broken_library_is_refused_with_a_warning(tmp_path):
    (tmp_path / "ovs").mkdir()
    for suffix in (".cpython-311-x86_64-linux-gnu.so", ".so"):
        (tmp_path / "ovs" / f"_json{suffix}").write_bytes(b"\x7fELF not really")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json, logging, ovs.json
        logging.basicConfig(level=logging.WARNING)
        from dvr_agent.drivers import ovs_json
        used = ovs_json.use_c_parser(({str(tmp_path)!r},))
        print(json.dumps({{"used": used, "now": ovs.json.PARSER}}))
    """)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["now"] == "PYTHON" and result["used"].startswith("pure Python")
    assert "not using the OVSDB JSON parser at" in done.stderr
