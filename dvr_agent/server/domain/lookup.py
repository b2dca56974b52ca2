"""Names or ids: every command that names a resource accepts either, like the openstack CLI."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.names import is_uuid
from dvr_agent.server.db import models
from dvr_agent.server.errors import BadRequest, Conflict, NotFound

M = TypeVar("M", models.Network, models.Subnet, models.Router, models.Port)

KINDS: dict[type, str] = {
    models.Network: "network",
    models.Subnet: "subnet",
    models.Router: "router",
    models.Port: "port",
}


def resolve(session: Session, model: type[M], ref: str) -> M:
    """The one ``model`` row whose id or name is ``ref``; NotFound / Conflict otherwise."""
    kind = KINDS[model]
    if not isinstance(ref, str) or not ref:
        raise BadRequest(f"a {kind} name or id is required")
    if is_uuid(ref):
        row = session.get(model, ref)
        if row is not None:
            return row
    rows = list(session.scalars(select(model).where(model.name == ref).limit(3)))
    if not rows:
        raise NotFound(f"no {kind} has the name or id {ref!r}")
    if len(rows) > 1:
        raise Conflict(f"more than one {kind} is named {ref!r}; use its id")
    return rows[0]


def resolve_floatingip(session: Session, ref: str) -> models.FloatingIP:
    """A floating IP by id or by its address."""
    if not isinstance(ref, str) or not ref:
        raise BadRequest("a floating IP id or address is required")
    if is_uuid(ref):
        row = session.get(models.FloatingIP, ref)
        if row is not None:
            return row
    rows = list(session.scalars(select(models.FloatingIP).where(
        models.FloatingIP.floating_ip_address == ref).limit(2)))
    if not rows:
        raise NotFound(f"no floating IP has the id or address {ref!r}")
    if len(rows) > 1:
        raise Conflict(f"more than one floating IP has the address {ref!r}; use its id")
    return rows[0]


def check_name(name: str | None, kind: str) -> str:
    """Names are free text but must not look like an id: ids must stay unambiguous."""
    name = name or ""
    if not isinstance(name, str) or len(name) > 255:
        raise BadRequest(f"{kind} name must be a string of at most 255 characters")
    if is_uuid(name):
        raise BadRequest(f"{kind} name {name!r} looks like an id; pick another name")
    return name
