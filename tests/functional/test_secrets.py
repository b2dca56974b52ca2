"""Secrets stay out of logs: the broker password and the database URL's password.

Both daemons log their whole configuration at start (debug), reconnect errors name the
broker, and a refused login or an unreachable database ends in a one-line error; none of
these may carry a password. Each case greps everything the process wrote, log file and
stderr, for the password itself and for its URL-encoded form.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from urllib.parse import quote

from tests.fixtures.agent_proc import AgentProcess
from tests.fixtures.dvr_server import DvrServer


def _password() -> str:
    # characters that URL-encoding changes (not "/": oslo.messaging cannot carry it)
    return "Pw-" + secrets.token_hex(10) + "+:@"


def _assert_absent(password: str, *texts: str) -> None:
    for text in texts:
        for form in (password, quote(password, safe="")):
            assert form not in text, f"the password {form!r} was written out:\n{text[-2000:]}"


def _run_agent_once(agent: AgentProcess) -> subprocess.CompletedProcess:
    agent.write_config()
    return subprocess.run([sys.executable, "-m", "dvr_agent.agent.main", "--config-file",
                           agent.conf_path], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_the_broker_password_is_never_logged(rabbitmq, ovs, postgres_url, tmp_path):
    password = _password()
    user = "secret-" + secrets.token_hex(4)
    url = rabbitmq.add_user(user, password)
    server = DvrServer(transport_url=url, state_dir=str(tmp_path / "server"),
                       database_url=postgres_url)
    server.start()
    agent = AgentProcess(host="compute7", mode="dvr", transport_url=url,
                         state_dir=str(tmp_path / "agent"), ovs_db=ovs.db,
                         ovs_rundir=ovs.rundir, local_ip="192.0.2.17")
    try:
        agent.start()
        agent.stop()
        log = agent.log()
        assert "transport_url" in log and "****" in log, "the config was not logged at start"

        # a login the broker refuses: the fatal line says why, without the password
        refused = AgentProcess(host="compute8", mode="dvr",
                               transport_url=url.replace(quote(password, safe=""), "wrong"),
                               state_dir=str(tmp_path / "refused"), ovs_db=ovs.db,
                               ovs_rundir=ovs.rundir, local_ip="192.0.2.18",
                               extra={"agent": {"dvr_mac_attempts": 2, "rpc_timeout": 3}})
        done = _run_agent_once(refused)
        assert done.returncode == 1
        assert "ACCESS_REFUSED" in done.stderr.strip().splitlines()[-1], done.stderr[-2000:]
        _assert_absent(password, log, refused.log(), done.stderr)
    finally:
        agent.close()
        server.stop()
        rabbitmq.ctl("delete_user", user)
    with open(server.log_path) as f:
        _assert_absent(password, f.read())


def test_the_database_password_is_never_logged(rabbitmq, postgres_url, tmp_path):
    password = _password()
    # trust authentication on the private socket: the password is carried, not checked
    url = postgres_url.replace("postgres@/", f"postgres:{quote(password, safe='')}@/")
    server = DvrServer(transport_url=rabbitmq.url(), state_dir=str(tmp_path / "server"),
                       database_url=url)
    server.start()
    server.stop()
    with open(server.log_path) as f:
        log = f.read()
    assert "connection" in log and "serving on postgresql" in log
    _assert_absent(password, log)

    # a database that cannot be reached: one line naming it, password masked
    unreachable = DvrServer(transport_url=rabbitmq.url(), state_dir=str(tmp_path / "gone"),
                            database_url=f"postgresql+psycopg2://dvr:{quote(password, safe='')}"
                                         "@127.0.0.1:1/dvr")
    unreachable.write_config()
    done = unreachable.command()
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("dvr-server: cannot use the database at postgresql+psycopg2://dvr:"
                           "***@127.0.0.1:1/dvr: "), line
    with open(unreachable.log_path) as f:
        _assert_absent(password, done.stderr, done.stdout, f.read())

    # a URL that does not parse: SQLAlchemy would quote it whole; we do not
    garbled = DvrServer(transport_url=rabbitmq.url(), state_dir=str(tmp_path / "garbled"),
                        database_url=f"not a url {password}")
    garbled.write_config()
    done = garbled.command()
    assert done.returncode == 2
    assert "[database] connection is not a usable database URL" in done.stderr, done.stderr
    _assert_absent(password, done.stderr, done.stdout)
