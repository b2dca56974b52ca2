"""dvrctl's side of the management RPC: one ``call`` per command, errors as ours.

Server-side errors arrive as oslo.messaging RemoteErrors naming the class; those of
``dvr_agent.server.errors`` are raised again as themselves, so the CLI prints their message
as is. (``allowed_remote_exmods`` would do it too, but it is a transport argument, and the
shared transport factory does not take it.)
"""

from __future__ import annotations

from typing import Any

from dvr_agent.rpc import transport as rpc_transport
from dvr_agent.server import errors
from dvr_agent.server import management_protocol as api

oslo_messaging = rpc_transport.oslo_messaging


class ServerUnreachable(RuntimeError):
    """No answer from dvr-server in time."""


class ManagementClient:
    def __init__(self, transport: oslo_messaging.Transport, *, timeout: int = 60):
        self._transport = transport
        self._client = oslo_messaging.get_rpc_client(
            self._transport, oslo_messaging.Target(topic=api.TOPIC, version=api.VERSION),
            timeout=timeout, retry=3)
        self._timeout = timeout

    @classmethod
    def from_conf(cls, conf: Any, *, timeout: int = 60) -> ManagementClient:
        """A client on the transport_url of ``conf`` (dvr-server's own config file)."""
        return cls(rpc_transport.get_transport(conf), timeout=timeout)

    def execute(self, command: str, **args: Any) -> Any:
        args = {k: v for k, v in args.items() if v is not None}
        try:
            return self._client.call(rpc_transport.admin_context(), "execute",
                                      command=command, args=args)
        except oslo_messaging.RemoteError as exc:
            known = getattr(errors, exc.exc_type or "", None)
            if isinstance(known, type) and issubclass(known, errors.ManagementError):
                raise known(exc.value) from None
            raise
        except oslo_messaging.MessagingTimeout:
            raise ServerUnreachable(
                f"no answer from dvr-server on topic {api.TOPIC} within {self._timeout} s "
                "(is it running, and is transport_url right?)") from None

    def close(self) -> None:
        self._transport.cleanup()
