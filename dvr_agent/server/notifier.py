"""Sends the notifications an operation planned, after its transaction committed.

A failed cast is logged and the rest still go out: agents are level-triggered and resync
on their own (full sync on ``revived``), so a lost message delays them but never breaks them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from dvr_agent.rpc import transport as rpc_transport
from dvr_agent.server.domain.notifications import Notification

LOG = logging.getLogger(__name__)
oslo_messaging = rpc_transport.oslo_messaging


class Notifier:
    def __init__(self, transport: oslo_messaging.Transport):
        self._transport = transport
        self._clients: dict[str, oslo_messaging.RPCClient] = {}

    def _client(self, topic: str) -> oslo_messaging.RPCClient:
        client = self._clients.get(topic)
        if client is None:
            client = oslo_messaging.get_rpc_client(self._transport,
                                                   oslo_messaging.Target(topic=topic))
            self._clients[topic] = client
        return client

    def send(self, notifications: Iterable[Notification]) -> None:
        for note in notifications:
            target = "fanout" if note.fanout else note.host
            try:
                cctxt = self._client(note.topic).prepare(
                    version=note.version, fanout=note.fanout, server=note.host)
                cctxt.cast(rpc_transport.admin_context(), note.method, **note.kwargs)
                LOG.debug("sent %s to %s.%s", note.method, note.topic, target)
            except Exception:
                LOG.exception("could not send %s to %s.%s", note.method, note.topic, target)
