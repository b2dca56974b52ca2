"""``dvr-server``: serve Neutron's agent RPC and the management API, or migrate the database.

    dvr-server --config-file /etc/dvr-agent/dvr-server.conf             # serve
    dvr-server --config-file /etc/dvr-agent/dvr-server.conf db upgrade  # schema to head

Serving refuses a database that is not at the schema this code needs, with a message that
says to run ``db upgrade``, rather than failing later on a missing column.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import sqlalchemy.exc
from oslo_config import cfg
from oslo_log import log as oslo_log

from dvr_agent import signals
from dvr_agent.rpc import protocol
from dvr_agent.rpc import transport as rpc_transport
from dvr_agent.server import config, management_protocol
from dvr_agent.server.db import api as db_api
from dvr_agent.server.db import migrate
from dvr_agent.server.domain.settings import Settings, parse_vni_ranges
from dvr_agent.server.heartbeats import HeartbeatBatcher
from dvr_agent.server.notifier import Notifier
from dvr_agent.server.rpc.l3 import BulkEndpoint, L3PluginEndpoint
from dvr_agent.server.rpc.management import ManagementEndpoint
from dvr_agent.server.rpc.plugin import DvrEndpoint, PluginEndpoint
from dvr_agent.server.rpc.reports import ReportsEndpoint
from dvr_agent.server.service import ControlPlane

LOG = logging.getLogger(__name__)
oslo_messaging = rpc_transport.oslo_messaging
_CLI_OPTS = [cfg.MultiStrOpt("command", positional=True, default=[],
                             help="Nothing to serve, or `db upgrade`.")]


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    return Settings(base_mac=conf.base_mac, dvr_base_mac=conf.dvr_base_mac,
                    dvr_mac_retries=conf.dvr_mac_retries, agent_down_time=conf.agent_down_time,
                    vni_ranges=parse_vni_ranges(conf.vni_ranges),
                    default_physnet=conf.default_physnet,
                    global_physnet_mtu=conf.global_physnet_mtu)


def database_from_conf(conf: cfg.ConfigOpts) -> db_api.Database:
    url = conf.database.connection or db_api.default_url(conf.state_path)
    return db_api.Database(url, busy_timeout_ms=conf.database.sqlite_busy_timeout,
                           max_retries=conf.database.max_retries)


class Server:
    """The RPC servers of dvr-server on one transport, started and stopped together."""

    def __init__(self, conf: cfg.ConfigOpts, db: db_api.Database):
        self.transport = rpc_transport.get_transport(conf)
        self.plane = ControlPlane(db, settings_from_conf(conf), Notifier(self.transport).send)
        self.heartbeats = HeartbeatBatcher(db.write, conf.heartbeat_batch_interval,
                                           conf.agent_down_time) \
            if conf.heartbeat_batch_interval > 0 else None
        endpoints = {
            protocol.TOPIC_L3_PLUGIN: [L3PluginEndpoint(self.plane), BulkEndpoint(self.plane)],
            protocol.TOPIC_PLUGIN: [PluginEndpoint(self.plane), DvrEndpoint(self.plane)],
            protocol.TOPIC_REPORTS: [ReportsEndpoint(self.plane, self.heartbeats)],
            management_protocol.TOPIC: [ManagementEndpoint(self.plane)],
        }
        self.servers = [
            oslo_messaging.get_rpc_server(
                self.transport, oslo_messaging.Target(topic=topic, server=conf.host), eps,
                access_policy=oslo_messaging.DefaultRPCAccessPolicy)
            for topic, eps in endpoints.items()]

    def start(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.start()
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        """Stop taking requests, finish those in flight, close the transport.

        One server after the other: each waits out its listener's poll (a few seconds).
        Stopping them side by side was faster but deadlocked inside oslo.messaging now and
        then (seen with the tests' fake agents), and a server that never exits is worse.
        """
        for server in self.servers:
            server.stop()
        for server in self.servers:
            server.wait()
        if self.heartbeats is not None:
            self.heartbeats.stop()
        self.transport.cleanup()


def _parse(argv: list[str]) -> cfg.ConfigOpts:
    conf = cfg.CONF
    config.register(conf)
    rpc_transport.register_opts(conf)
    oslo_log.register_options(conf)
    conf.register_cli_opts(_CLI_OPTS)
    conf(argv, project="dvr-agent", prog="dvr-server")
    oslo_log.setup(conf, "dvr-server")
    return conf


def main(argv: list[str] | None = None) -> int:
    conf = _parse(sys.argv[1:] if argv is None else argv)
    command = list(conf.command)
    if command not in ([], ["db", "upgrade"]):
        print(f"dvr-server: unknown command {' '.join(command)!r}; "
              "the only command is `db upgrade`", file=sys.stderr)
        return 2
    try:
        settings_from_conf(conf)
    except ValueError as exc:
        print(f"dvr-server: bad configuration: {exc}", file=sys.stderr)
        return 2
    if not command:
        problem = (rpc_transport.url_problem(conf, conf.transport_url) if conf.transport_url
                   else "not set (e.g. rabbit://user:pass@host:5672/)")
        if problem:
            print(f"dvr-server: [DEFAULT] transport_url is not usable: {problem}",
                  file=sys.stderr)
            return 2
    conf.log_opt_values(LOG, logging.DEBUG)  # secret options (connection, URL) as ****
    try:
        db = database_from_conf(conf)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as exc:
        # SQLAlchemy's own message quotes the whole URL, password included: not printed
        print("dvr-server: [database] connection is not a usable database URL "
              f"(dialect+driver://user:password@host/name): {exc.__class__.__name__}",
              file=sys.stderr)
        return 2
    try:
        if command == ["db", "upgrade"]:
            migrate.upgrade(db.engine)
            print(f"dvr-server: database at schema {migrate.head_revision()}")
            return 0
        migrate.check_current(db.engine)
    except migrate.SchemaOutOfDate as exc:
        print(f"dvr-server: {exc}", file=sys.stderr)
        return 1
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        print(f"dvr-server: cannot use the database at {db.safe_url}: {reason}",
              file=sys.stderr)
        return 1
    server = Server(conf, db)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    LOG.info("dvr-server %s serving on %s", conf.host, db.safe_url)
    signals.wait_until_set(stopping)
    LOG.info("dvr-server stopping")
    # each oslo.messaging listener notices a stop only at its next poll (up to 5 s): give
    # the orderly stop a few seconds; every write is already committed, so exiting
    # without waiting longer loses nothing
    stopper = threading.Thread(target=server.stop, name="rpc-stop", daemon=True)
    stopper.start()
    stopper.join(STOP_GRACE)
    if not stopper.is_alive():
        db.dispose()
    LOG.info("dvr-server stopped")
    return 0


STOP_GRACE = 3.0


def run() -> None:
    """The console script: exit at once after main(), leftover listener threads or not."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
