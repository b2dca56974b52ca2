"""VM ports on br-int: from OVSDB to the facts, and "device up/down" back to the server.

This is where the seed's "a VM is created on (or deleted from) a compute node" enters:
Nova (or ``dvr-lab vm boot``) plugs a tap into br-int with ``external_ids:iface-id``; the
OVSDB monitor reports it; the agent asks the server for the port's details, the facts
learn the VIF, the reconciler tags it and writes its DVR flows, and only then is it
reported up — as Neutron's OVS agent does. A removed tap is reported down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from dvr_agent import models
from dvr_agent.agent.announce_gate import AnnouncementGate
from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.fetcher import Fetcher
from dvr_agent.agent.metrics import Metrics
from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.mac_table import Entry, MacTable
from dvr_agent.drivers.ovsdb import Ovsdb, PortEvent, PortInfo
from dvr_agent.models import PayloadError
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.state import OWNER_EXTERNAL_ID

LOG = logging.getLogger(__name__)
IFACE_ID = "iface-id"
# What a VIF coming or going can change: its tag, and flows (its network's and the DVR
# delivery flows of the routers on its subnets). Namespaces do not depend on VIFs, so
# their passes need not read a router's namespace (most of a VIF's pass at scale).
VIF_ASPECTS = Aspect.OVS | Aspect.FLOWS


def is_vif(port: PortInfo, integration_bridge: str) -> bool:
    """A port somebody else plugged into br-int for a Neutron port (not one of ours)."""
    return (port.bridge == integration_bridge and IFACE_ID in port.external_ids
            and OWNER_EXTERNAL_ID not in port.external_ids)


class VifTracker:
    def __init__(self, core: AgentCore, fetcher: Fetcher, ovsdb: Ovsdb,
                 integration_bridge: str, metrics: Metrics, gate: AnnouncementGate,
                 mac_table: MacTable) -> None:
        self._core = core
        self._gate = gate  # told which ports are wired: it holds their FIPs' announcements
        self._mac_table = mac_table
        self._fetcher = fetcher
        self._ovsdb = ovsdb
        self._bridge = integration_bridge
        self._metrics = metrics
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}  # port name -> port id
        self._awaiting_up: dict[str, frozenset[str]] = {}  # port id -> keys to be done
        self._plugged_at: dict[str, float] = {}  # port id -> when its port event came

    def start(self) -> None:
        """Take the VIFs present now, then follow OVSDB's port events."""
        self._ovsdb.watch(self.on_event)
        self.rescan()

    def on_event(self, event: PortEvent) -> None:
        """On the OVSDB thread: keep it short, the server is asked on the fetcher's thread."""
        if event.kind == "resync":
            self.rescan()
            return
        port = event.port
        if event.kind == "removed":
            self._removed(port.name)
            return
        self._core.change(lambda f: f.set_ofport(port.name, port.ofport), aspect=Aspect.FLOWS)
        if is_vif(port, self._bridge):
            self._seen(port, plugged_at=time.monotonic())

    def rescan(self) -> None:
        """Compare the whole replica with what we know (after a reconnect nothing is missed)."""
        ports = self._ovsdb.ports()
        self._core.change(lambda f: set().union(*(f.set_ofport(n, p.ofport)
                                                   for n, p in ports.items())),
                          aspect=Aspect.FLOWS)
        vifs = {n: p for n, p in ports.items() if is_vif(p, self._bridge)}
        with self._lock:
            gone = [n for n in self._known if n not in vifs]
        for name in gone:
            self._removed(name)
        for port in vifs.values():
            self._seen(port)

    def refresh(self, port_id: str) -> None:
        """The server says a port of this host changed: ask for its details again."""
        with self._lock:
            name = next((n for n, p in self._known.items() if p == port_id), "")
        self._fetcher.request_device(port_id, name)

    def _seen(self, port: PortInfo, plugged_at: float | None = None) -> None:
        """Take note of a VIF; a new one's details are asked for. ``plugged_at``: when
        its port event came (the start of its ``vif_plugged`` latency)."""
        port_id = port.external_ids[IFACE_ID]
        with self._lock:
            if self._known.get(port.name) == port_id:
                return
            self._known[port.name] = port_id
            if plugged_at is not None:
                self._plugged_at[port_id] = plugged_at
        LOG.info("VIF %s (port %s) plugged into %s: asking the server for its details",
                 port.name, port_id, self._bridge)
        self._fetcher.request_device(port_id, port.name)

    def _removed(self, name: str) -> None:
        with self._lock:
            port_id = self._known.pop(name, None)
            if port_id is not None:
                self._awaiting_up.pop(port_id, None)
                self._plugged_at.pop(port_id, None)
        keys = self._core.change(lambda f: f.remove_vif(name) | f.set_ofport(name, None),
                                 aspect=VIF_ASPECTS)
        if port_id is not None:
            self._gate.unplugged(port_id)
            LOG.info("VIF %s (port %s) left %s", name, port_id, self._bridge)
            self._fetcher.report_devices(down=[port_id])
        elif keys:
            LOG.info("port %s left %s", name, self._bridge)

    def on_details(self, details: models.DeviceDetails, port_name: str,
                   segment: models.Segment) -> None:
        """On the fetcher's thread: the server's details of a VIF we saw, with its
        network's segment. Both are learnt in one change, so that one pass tags the VIF
        and writes its flows (learnt apart, the segment's pass began at once and the
        flows waited for the next: a VM port's latency)."""
        network_id = details.network_id
        try:
            vif = models.LocalVif.from_details(port_name, details)
        except PayloadError as exc:
            LOG.error("VIF %s: details rejected: %s", port_name, exc)
            vif = None
        with self._lock:
            current = vif is not None and self._known.get(port_name) == vif.port_id
        if not current:  # rejected, or unplugged (or replaced) meanwhile: the segment only
            self._core.change(lambda f: f.set_segment(network_id, segment))
            return
        ofport = self._ovsdb.ofport(port_name)
        # a new or changed segment can change the network's namespaces too (the MTU)
        known = self._core.read(lambda f: f.segment(network_id)) == segment
        keys = self._core.change(lambda f: f.set_segment(network_id, segment) | f.set_vif(vif)
                                 | f.set_ofport(port_name, ofport),
                                 aspect=VIF_ASPECTS if known else Aspect.ALL)
        with self._lock:
            self._awaiting_up[vif.port_id] = keys

    def after_pass(self, still_busy: Iterable[str]) -> None:
        """Report up the VIFs none of whose keys is still queued, failed or pending."""
        busy = set(still_busy)
        now = time.monotonic()
        with self._lock:
            ready = [p for p, keys in self._awaiting_up.items() if not keys & busy]
            for port_id in ready:
                del self._awaiting_up[port_id]
            plugged = {p: self._plugged_at.pop(p) for p in ready if p in self._plugged_at}
        for when in plugged.values():
            self._metrics.event_latency.labels(event="vif_plugged").observe(now - when)
        if ready:
            LOG.info("VIFs wired: %s", ", ".join(sorted(ready)))
            # the server first: its call runs on the fetcher's thread while br-int forgets
            # (an ovs-appctl round, ~10 ms at 300 routers); the announcements wait for both
            self._fetcher.report_devices(up=ready)
            self._forget_old_places(plugged)
            self._gate.wired(ready)

    def _forget_old_places(self, port_ids: Iterable[str]) -> None:
        """br-int may have learned a newly plugged VIF's MAC at the host it came from
        (see drivers.mac_table): forget that before its floating IPs are announced, so
        their first frames reach the VM here. VIFs found at a start did not move."""
        wanted = set(port_ids)
        if not wanted:
            return
        entries: list[Entry] = self._core.read(lambda f: [
            (vif.port_name, vlan, vif.mac) for vif in f.vifs.values()
            if vif.port_id in wanted and (vlan := f.local_vlan(vif.network_id)) is not None])
        try:
            forgotten = self._mac_table.forget(self._bridge, entries)
        except DriverError as exc:
            LOG.warning("could not clear %s's MAC table for the new VIFs (frames to them may "
                        "go where they were until they send one): %s", self._bridge, exc)
            return
        if forgotten:
            LOG.debug("%s forgot where it learned %s", self._bridge,
                      ", ".join(mac for _, _, mac in forgotten))

    def count(self) -> int:
        with self._lock:
            return len(self._known)
