"""The checked-in sample config is what oslo-config-generator makes today; secrets stay secret."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

from dvr_agent.server import config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SAMPLE = os.path.join(ROOT, "etc", "dvr-server.conf")
GENERATOR_CONF = os.path.join(ROOT, "etc", "oslo-config-generator", "dvr-server.conf")


def test_sample_config_matches_the_generator(tmp_path):
    out = tmp_path / "dvr-server.conf"
    generator = os.path.join(os.path.dirname(sys.executable), "oslo-config-generator")
    subprocess.run([generator, "--config-file",
                    GENERATOR_CONF, "--output-file", str(out)], check=True, cwd=ROOT,
                   capture_output=True)
    with open(SAMPLE) as f:
        assert out.read_text() == f.read(), (
            "etc/dvr-server.conf is stale: run `oslo-config-generator --config-file "
            "etc/oslo-config-generator/dvr-server.conf`")


def test_sample_documents_every_server_option():
    with open(SAMPLE) as f:
        sample = f.read()
    for group, opts in config.list_opts():
        assert f"[{group}]" in sample
        for opt in opts:
            assert f"#{opt.dest} = " in sample, opt.dest


def test_database_connection_is_secret():
    [connection] = [o for o in config.DATABASE_OPTS if o.dest == "connection"]
    assert connection.secret


def test_systemd_unit_runs_the_server_on_the_installed_config():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(os.path.join(ROOT, "systemd", "dvr-server.service"))
    assert unit["Service"]["ExecStart"].endswith(
        "dvr-server --config-file /etc/dvr-agent/dvr-server.conf")
    assert unit["Service"]["Type"] == "simple"
    assert unit["Service"]["NoNewPrivileges"] == "yes"
