"""The control plane as one object: database + settings + notifier, and a unit of work.

``change(work)`` is how every mutation runs: ``work(session)`` returns an Outcome inside
one write transaction; after commit its notifications go out. RPC endpoints and the
management API hold a ControlPlane and nothing else.

``generation`` counts committed changes that may alter what agents are told (everything
but a plain heartbeat): answers computed from the database can be reused while it stands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from dvr_agent.server.db.api import Database
from dvr_agent.server.domain import devices
from dvr_agent.server.domain.notifications import Notification, Outcome
from dvr_agent.server.domain.settings import Settings

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class ControlPlane:
    def __init__(self, db: Database, settings: Settings,
                 send: Callable[[list[Notification]], None]):
        self.db = db
        self.settings = settings
        self._send = send
        self.generation = 0
        self._generation_lock = threading.Lock()

    def read(self, work: Callable[[Session], T]) -> T:
        return self.db.read(work)

    def change(self, work: Callable[[Session], Outcome],
               present: Callable[[Session, Any], Any] | None = None, *,
               topology: bool = True) -> Any:
        """Run a mutation, send what it calls for; return ``present(result)`` or the result.

        ``present`` runs in the same transaction, so the answer shows the committed state.
        ``topology=False`` marks a change no agent-visible answer depends on (a heartbeat
        that scheduled nothing); every other change starts a new generation.
        """
        def unit(session: Session) -> tuple[Any, list[Notification]]:
            outcome = work(session)
            for note in outcome.notifications:
                if note.method == "router_removed_from_agent":
                    devices.unbind_distributed(session, note.kwargs["payload"]["router_id"],
                                               note.host)
            result = present(session, outcome.result) if present else outcome.result
            return result, outcome.notifications

        result, notes = self.db.write(unit)
        if topology or notes:
            self.new_generation()
        if notes:
            self._send(notes)
        return result

    def new_generation(self) -> None:
        """Answers computed before now may be stale."""
        with self._generation_lock:
            self.generation += 1
