"""MAC addresses: random ones under a base (ports, DVR host MACs) and their spellings.

Rules as Neutron's ``get_random_mac``: the base's first 3 octets are kept, the 4th too when
it is not 00, the rest is random. The database holds canonical lower-case colon form; DVR
MACs go over RPC the way neutron-server sends them (``FA-16-3F-77-86-3E``, netaddr's default
EUI-48 dialect), because agents compare what they receive as strings.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable

import netaddr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dvr_agent.server.db import models
from dvr_agent.server.errors import BadRequest, Conflict

LOG = logging.getLogger(__name__)
Rng = Callable[[int], int]  # rng(bits) -> random int of that many bits


def system_rng(bits: int) -> int:
    return random.SystemRandom().getrandbits(bits)


_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])([0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$")


def canonical_mac(mac: str) -> str:
    """``FA-16-3E-00-00-01`` or ``fa:16:3e:00:00:01`` -> ``fa:16:3e:00:00:01``.

    Six octets, colons or dashes, nothing else: netaddr alone also takes ``fa:16:3f`` (and
    pads it into another MAC), which would turn a typo into a wrong address.
    """
    if not isinstance(mac, str) or not _MAC.match(mac):
        raise BadRequest(f"{mac!r} is not a MAC address (six octets, e.g. fa:16:3e:00:00:01)")
    try:
        return str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded))
    except (netaddr.AddrFormatError, TypeError, ValueError):
        raise BadRequest(f"{mac!r} is not a MAC address") from None


def neutron_mac(mac: str) -> str:
    """The spelling neutron-server uses for DVR MACs on the wire: ``FA-16-3F-77-86-3E``."""
    return str(netaddr.EUI(mac))


def random_mac(base: str, rng: Rng = system_rng) -> str:
    """A MAC under ``base``: 3 fixed octets (4 if the base's 4th is not 00), the rest random."""
    octets = canonical_mac(base).split(":")
    fixed = 4 if octets[3] != "00" else 3
    tail_bits = 8 * (6 - fixed)
    tail = rng(tail_bits).to_bytes(6 - fixed, "big")
    return ":".join(octets[:fixed] + [f"{b:02x}" for b in tail])


def allocate_port_mac(session: Session, network_id: str, base: str, *,
                      rng: Rng = system_rng, attempts: int = 16) -> str:
    """A MAC unused on the network (ports' MACs are unique per network, as in Neutron)."""
    for _ in range(attempts):
        mac = random_mac(base, rng)
        taken = session.scalar(select(models.Port.id).where(
            models.Port.network_id == network_id, models.Port.mac_address == mac))
        if taken is None:
            return mac
    raise Conflict(f"no free MAC address under base_mac {base} after {attempts} attempts")


class HostMacAllocationFailed(RuntimeError):
    """Every attempt collided; the agent retries, and an operator should widen dvr_base_mac."""


def dvr_mac_for_host(session: Session, host: str, base: str, *, retries: int = 20,
                     rng: Rng = system_rng) -> tuple[str, bool]:
    """The host's DVR MAC, allocated on first request and kept for good: ``(mac, created)``.

    A candidate that collides with another host's MAC violates ``dvr_host_macs.mac_address``
    UNIQUE inside a savepoint and we draw again; if the host itself appeared meanwhile (a
    second server process won the race), its row is the answer.
    """
    existing = session.get(models.DvrHostMac, host)
    if existing is not None:
        return existing.mac_address, False
    for attempt in range(1, retries + 1):
        mac = random_mac(base, rng)
        try:
            with session.begin_nested():
                session.add(models.DvrHostMac(host=host, mac_address=mac))
            return mac, True
        except IntegrityError:
            raced = session.get(models.DvrHostMac, host, populate_existing=True)
            if raced is not None:
                return raced.mac_address, False
            LOG.info("DVR MAC %s for %s is taken (attempt %d of %d); drawing another",
                     mac, host, attempt, retries)
    raise HostMacAllocationFailed(
        f"no free DVR MAC for host {host} under dvr_base_mac {base} after {retries} attempts")


def dvr_mac_list(session: Session) -> list[dict[str, str]]:
    """Every host's DVR MAC in neutron-server's RPC shape, ordered by host."""
    rows = session.scalars(select(models.DvrHostMac).order_by(models.DvrHostMac.host))
    return [{"host": r.host, "mac_address": neutron_mac(r.mac_address)} for r in rows]
