"""dvr-server's options: one list per group, registered on the global cfg.CONF.

The global CONF is not a style choice: oslo.messaging 18 registers its tracing options only
there, and an RPC client on a private ConfigOpts fails. ``list_opts`` feeds
oslo-config-generator, which writes etc/dvr-server.conf (a unit test keeps it current).
"""

from __future__ import annotations

import socket

from oslo_config import cfg

DEFAULT_OPTS = [
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<hostname>",
               help="Name of this server on the RPC bus (the server of its RPC topics)."),
    cfg.StrOpt("state_path", default="/var/lib/dvr-server",
               help="Directory for the server's state: the SQLite database by default."),
    cfg.StrOpt("base_mac", default="fa:16:3e:00:00:00",
               help="Base MAC of ports. The first 3 octets are kept, the 4th too if it is not "
                    "00; the rest is random."),
    cfg.StrOpt("dvr_base_mac", default="fa:16:3f:00:00:00",
               help="Base MAC of DVR host MACs (dvr_host_macs). Same rules as base_mac, and it "
                    "must differ from base_mac so a host MAC never equals a port's."),
    cfg.IntOpt("dvr_mac_retries", default=20, min=1,
               help="Attempts to find a free DVR host MAC before the request fails."),
    cfg.IntOpt("agent_down_time", default=75, min=1,
               help="Seconds without a heartbeat after which an agent is considered dead. "
                    "Should be at least twice the agents' report_interval."),
    cfg.FloatOpt("heartbeat_batch_interval", default=1.0, min=0,
                 help="Heartbeats of agents known alive that change nothing but the time are "
                      "written together every this many seconds (0: each on its own). Most "
                      "of a large cloud's writes are heartbeats."),
    cfg.ListOpt("vni_ranges", default=["1:65535"],
                help="MIN:MAX ranges of VXLAN VNIs given to tenant networks."),
    cfg.StrOpt("default_physnet", default="physnet1",
               help="Physical network of external (flat) networks when none is given."),
    cfg.IntOpt("global_physnet_mtu", default=1500, min=68,
               help="MTU of the physical network; VXLAN networks get 50 bytes less."),
]

DATABASE_OPTS = [
    cfg.StrOpt("connection", secret=True,
               help="SQLAlchemy URL of the database, e.g. "
                    "postgresql+psycopg2://user:pass@host/dvr or "
                    "mysql+pymysql://user:pass@host/dvr. Default: SQLite in state_path."),
    cfg.IntOpt("sqlite_busy_timeout", default=30000, min=0,
               help="Milliseconds a SQLite connection waits for a lock before failing. Writes "
                    "are serialised in the process, so this only matters with other processes."),
    cfg.IntOpt("max_retries", default=10, min=1,
               help="Attempts of a write that hits a uniqueness race or a deadlock."),
]


def register(conf: cfg.ConfigOpts = cfg.CONF) -> None:
    """Register our options (idempotent: oslo.config ignores an identical second registration)."""
    conf.register_opts(DEFAULT_OPTS)
    conf.register_opts(DATABASE_OPTS, group="database")


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """The ``oslo.config.opts`` entry point of dvr-server."""
    return [("DEFAULT", DEFAULT_OPTS), ("database", DATABASE_OPTS)]
