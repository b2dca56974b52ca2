"""The oslo.messaging transport with Neutron's exchange and context format.

oslo.messaging's import pulls in oslo.service, whose default backend is eventlet;
dvr_agent.threads_only (run when the package is imported) makes it threads.
"""

from __future__ import annotations

import importlib.metadata
import uuid
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_messaging import opts as messaging_opts

from dvr_agent.rpc import protocol


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register oslo.messaging's options now (it would only when a transport is made), so
    that a config can be checked — transport_url above all — before anything starts."""
    oslo_messaging.set_transport_defaults(control_exchange=protocol.CONTROL_EXCHANGE)
    for group, opts in messaging_opts.list_opts():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
    # oslo.messaging waits up to 30 s between reconnection attempts; agents and the server
    # that learn the broker is back within seconds converge within seconds
    conf.set_default("rabbit_interval_max", 3, group="oslo_messaging_rabbit")


def url_problem(conf: cfg.ConfigOpts, url: str) -> str | None:
    """Why ``url`` cannot be a transport (unparsable, or no such driver), or None."""
    try:
        parsed = oslo_messaging.TransportURL.parse(conf, url)
    except oslo_messaging.InvalidTransportURL as exc:
        return str(exc)
    drivers = {e.name for e in importlib.metadata.entry_points(group="oslo.messaging.drivers")}
    if parsed.transport not in drivers:
        return (f"no messaging driver {parsed.transport!r} "
                f"(one of {', '.join(sorted(drivers))})")
    for host in parsed.hosts:
        # the rabbit driver re-quotes credentials with urllib's default safe='/', so a '/'
        # reaches kombu raw and splits the URL (it then fails on a "port" made of the
        # rest of the password, quoting it in a traceback): refuse it here, in one line
        for what, value in (("user name", host.username), ("password", host.password)):
            if value and "/" in value:
                return (f"the {what} for {host.hostname} contains '/', which "
                        "oslo.messaging cannot pass to the broker: choose one without it")
    return None


def get_transport(conf: cfg.ConfigOpts, url: str | None = None) -> oslo_messaging.Transport:
    """An RPC transport on Neutron's control exchange.

    ``conf`` must be the global ``cfg.CONF``: oslo.messaging 18 registers its tracing
    options only there, and RPCClient.call() fails on a private ConfigOpts.
    """
    oslo_messaging.set_transport_defaults(control_exchange=protocol.CONTROL_EXCHANGE)
    return oslo_messaging.get_rpc_transport(conf, url=url)


def admin_context() -> dict[str, Any]:
    """What Neutron's agents send as context: admin, no user or project, a fresh request id.

    neutron_lib's Context.from_dict on a real neutron-server accepts this shape.
    """
    return {
        "user_id": None,
        "project_id": None,
        "tenant_id": None,
        "is_admin": True,
        "read_only": False,
        "show_deleted": False,
        "request_id": f"req-{uuid.uuid4()}",
        "global_request_id": None,
        "roles": ["admin"],
        "project_name": None,
        "user_name": None,
        "timestamp": None,
    }
