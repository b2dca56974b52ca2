"""dvrctl's side of the management RPC: one ``call`` per command, errors as ours.

Server-side errors come back as the classes of ``dvr_agent.server.errors`` (oslo.messaging
rebuilds them from ``allowed_remote_exmods``), so the CLI prints their message as is.
"""

from __future__ import annotations

from typing import Any

from dvr_agent.rpc import transport as rpc_transport
from dvr_agent.server import management_protocol as api

oslo_messaging = rpc_transport.oslo_messaging


class ServerUnreachable(RuntimeError):
    """No answer from dvr-server in time."""


class ManagementClient:
    def __init__(self, conf: Any, *, timeout: int = 60):
        self._transport = rpc_transport.get_transport(conf)
        self._client = oslo_messaging.get_rpc_client(
            self._transport, oslo_messaging.Target(topic=api.TOPIC, version=api.VERSION),
            timeout=timeout, retry=3, allowed_remote_exmods=[api.ERRORS_MODULE])
        self._timeout = timeout

    def execute(self, command: str, **args: Any) -> Any:
        args = {k: v for k, v in args.items() if v is not None}
        try:
            return self._client.call(rpc_transport.admin_context(), "execute",
                                      command=command, args=args)
        except oslo_messaging.MessagingTimeout:
            raise ServerUnreachable(
                f"no answer from dvr-server on topic {api.TOPIC} within {self._timeout} s "
                "(is it running, and is transport_url right?)") from None

    def close(self) -> None:
        self._transport.cleanup()
