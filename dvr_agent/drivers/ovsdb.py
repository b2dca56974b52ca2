"""Bridges and ports in Open vSwitch's database, through python-ovs's IDL.

Why the raw IDL and not ovsdbapp (both measured, library-findings.md §4): the work here is
a handful of row edits per pass, and what we need around them is precise: ONE transaction
per call, waiting until ovs-vswitchd has applied it (``next_cfg``/``cur_cfg``) and every
interface has an ofport, and an *exception* naming the row when it fails. ovsdbapp gives
the waiting but logs and swallows post-commit failures (ofport -1), joins outer
transactions implicitly per thread, has no reconnect notification for a "resync", and its
batched ``del_port`` is O(n²) in Python (15 s of 34 s for 1,000 ports). The raw IDL does
1,000 ports in one transaction in ~1 s; what ovsdbapp would add is a thread and a queue,
which are ~60 lines here. Only the tables and columns we use are registered; the schema
is read from the server (ovsdbapp's ``get_schema_helper``, the one piece of it we use), so
the client always matches the server it talks to.

Threading: one background thread owns the IDL: it runs ``Idl.run()`` (protocol,
reconnects with backoff) under a lock and wakes waiters through a Condition. Reads copy
values out of the replica under the same lock: no round trip. A write builds its
transaction under the lock, commits it, and waits on the Condition for the server's
reply, then for ``cur_cfg`` and the ofports, while the thread keeps the replica current.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

import ovs.db.idl
import ovs.poller
from ovsdbapp.backend.ovs_idl import idlutils

from dvr_agent.drivers import ovs_json
from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.ovsdb_monitor import (
    PortCache,
    PortCallback,
    PortEvent,
    PortInfo,
    PortWatch,
    ReplicaIdl,
    read_bridges,
    usable_ofport,
)
from dvr_agent.drivers.ovsdb_txn import Change, build
from dvr_agent.state import Bridge, OvsPort, VifTag

__all__ = ["Ovsdb", "PortEvent", "PortInfo"]

LOG = logging.getLogger(__name__)

SCHEMA = "Open_vSwitch"
TABLES = {
    "Open_vSwitch": ["bridges", "next_cfg", "cur_cfg"],
    "Bridge": ["name", "ports", "datapath_type", "fail_mode", "protocols"],
    "Port": ["name", "interfaces", "tag", "other_config"],
    "Interface": ["name", "type", "options", "external_ids", "ofport", "ofport_request",
                  "error"],
}
Txn = ovs.db.idl.Transaction
MONITORING = ovs.db.idl.Idl.IDL_S_MONITORING


class Ovsdb:
    """An OVSDB client: an in-memory replica for reads, one transaction per write."""

    def __init__(self, connection: str, *, timeout: float = 30.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self._cond = threading.Condition()
        self._idl: ReplicaIdl | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_r, self._wake_w = -1, -1
        self._generation = 0  # how many times the replica was (re)loaded from the server
        self._unsettled_cfg: int | None = None  # the next_cfg of an apply(settle=False)
        self._watch = PortWatch()
        self._cache = PortCache()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect, load the replica, and keep it current on a background thread."""
        LOG.info("OVSDB JSON parser: %s", ovs_json.use_c_parser())
        try:
            helper = idlutils.get_schema_helper(self.connection, SCHEMA)
        except Exception as exc:
            raise DriverError(f"OVSDB at {self.connection}: cannot read its schema: {exc}",
                              obj=self.connection) from exc
        for table, columns in TABLES.items():
            helper.register_columns(table, columns)
        self._idl = ReplicaIdl(self.connection, helper)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ovsdb-idl", daemon=True)
        self._thread.start()
        with self._cond:
            ready = self._cond.wait_for(lambda: self._generation > 0, self.timeout)
        if not ready:
            self.stop()
            raise DriverError(f"OVSDB at {self.connection}: no replica after {self.timeout} s",
                              obj=self.connection)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake()
        self._thread.join()
        self._thread = None
        self._idl.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> Ovsdb:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        """The IDL thread: protocol, replica, waiters, port events."""
        seen = self._idl.change_seqno
        while not self._stopping:
            try:
                seen = self._run_once(seen)
            except Exception:  # the replica must outlive a bug in one update
                LOG.exception("OVSDB IDL thread: unexpected error; continuing")
                time.sleep(1.0)

    def _run_once(self, seen: int) -> int:
        """One round: process what the server sent, wake waiters, report port changes,
        then block until the server, a timer of the session or ``_wake`` needs us."""
        idl = self._idl
        with self._cond:
            was_monitoring = idl.state == MONITORING
            idl.run()
            events: list[PortEvent] = []
            reloaded = idl.state == MONITORING and not was_monitoring
            if reloaded:
                self._generation += 1
            rows_changed = idl.take_changed_ports()
            if idl.change_seqno != seen or reloaded:
                seen = idl.change_seqno
                changed = (self._cache.rebuild(idl) if reloaded
                           else self._cache.update(idl, rows_changed))
                if self._watch.callbacks:
                    resync = reloaded and self._generation > 1
                    events = self._watch.changes(self._cache, changed, resync)
                self._cond.notify_all()
            poller = ovs.poller.Poller()
            idl.wait(poller)
        self._watch.dispatch(events)
        poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
        poller.block()
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass
        return seen

    # ------------------------------------------------------------ reads (replica)

    def bridges(self) -> dict[str, Bridge]:
        with self._cond:
            return read_bridges(self._idl)

    def ports(self, bridge: str | None = None) -> dict[str, PortInfo]:
        """Every port (of ``bridge``), from the values kept current by the IDL thread."""
        with self._cond:
            return {n: p for n, p in self._cache.ports.items()
                    if bridge is None or p.bridge == bridge}

    def ports_named(self, names: Iterable[str]) -> dict[str, PortInfo]:
        """The ports of these names that exist (a small pass looks up a few among
        thousands; copying the whole replica was a tenth of an ARP event's pass)."""
        with self._cond:
            return {n: self._cache.ports[n] for n in names if n in self._cache.ports}

    def ofport(self, name: str) -> int | None:
        """The ofport of interface ``name``; None if it has none (yet) or does not exist.

        Found through its port's name (one dict lookup): the compiler asks for every port
        of a pass, and a scan of all interfaces per call would make that quadratic.
        """
        with self._cond:
            idl = self._idl
            port = idl.tables["Port"].rows.get(idl.port_uuids.get(name))
            if port is not None:
                for iface in port.interfaces:
                    if iface.name == name:
                        return usable_ofport(iface)
            for iface in idl.tables["Interface"].rows.values():  # a bond member, say
                if iface.name == name:
                    return usable_ofport(iface)
        return None

    def watch(self, callback: PortCallback) -> None:
        """Call ``callback(PortEvent)`` for changes of ports with ``external_ids:iface-id``.

        Ports that exist now are not reported (read them with ``ports()``). After a
        reconnect "resync" comes first: re-read everything, the replica was reloaded.
        Callbacks run on the IDL thread: keep them short and hand work to another thread
        (``apply`` from a callback would wait for the very thread it blocks: refused).
        """
        with self._cond:
            if not self._watch.callbacks:
                self._watch.reset(self._cache.vm_ports())
            self._watch.callbacks.append(callback)

    # ------------------------------------------------------------ writes

    def apply(self, *, add_bridges: Iterable[Bridge] = (), del_bridges: Iterable[str] = (),
              add_ports: Iterable[OvsPort] = (), update_ports: Iterable[OvsPort] = (),
              del_ports: Iterable[str] = (), vif_tags: Iterable[VifTag] = (),
              settle: bool = True) -> None:
        """Make all these changes in ONE transaction and wait until ovs-vswitchd applied it.

        Adding what exists already makes it match (idempotent); ``update_ports`` changes
        existing ports in place (never delete and re-create: that drops traffic);
        ``vif_tags`` only tag ports somebody else created. Raises InvalidInput before
        anything changes, DriverError naming the row when the server or ovs-vswitchd
        refuses (an interface with ofport -1 names its ``error``).

        ``settle=False`` returns once OVSDB committed the change and every port it names
        (the tagged VIFs too) has an ofport, and leaves waiting for ovs-vswitchd to
        ``settle()``: what needs only those ofports (a VIF's flows) can go meanwhile.
        """
        if threading.current_thread() is self._thread:
            raise DriverError("Ovsdb.apply() called from a port event callback: it would "
                              "deadlock the IDL thread", obj=self.connection)
        change = Change.validated(
            add_bridges=add_bridges, del_bridges=del_bridges, add_ports=add_ports,
            update_ports=update_ports, del_ports=del_ports, vif_tags=vif_tags)
        if change.empty:
            return
        deadline = time.monotonic() + self.timeout
        with self._cond:
            target = self._commit(change, deadline)
            if target is not None and settle:
                self._wait(deadline, f"ovs-vswitchd to apply {change}",
                           lambda: self._cur_cfg() >= target)
            elif target is not None:
                self._unsettled_cfg = max(target, self._unsettled_cfg or target)
            self._wait(deadline, f"ofports of {change}",
                       lambda: self._ofports_assigned(change.port_names))
            if not settle:
                # somebody else's port: ofport -1 is theirs to explain, and no reason to
                # fail the key (ovs-vswitchd applied the tag to the row all the same)
                self._wait(deadline, f"ofports of {change}",
                           lambda: self._ofports_known({t.port for t in change.vif_tags}))
        LOG.info("ovsdb: %s %s", "applied" if settle else "committed", change)

    def settle(self) -> None:
        """Wait until ovs-vswitchd has applied what ``apply(settle=False)`` committed."""
        deadline = time.monotonic() + self.timeout
        with self._cond:
            target = self._unsettled_cfg
            if target is None:
                return
            self._wait(deadline, f"ovs-vswitchd to apply change {target}",
                       lambda: self._cur_cfg() >= target)
            if self._unsettled_cfg == target:
                self._unsettled_cfg = None

    def _commit(self, change: Change, deadline: float) -> int | None:
        """Commit ``change``; the ``next_cfg`` to wait for, None if nothing had to change.

        TRY_AGAIN (connection lost, a concurrent write) rebuilds the transaction from the
        replica as it is then, until the deadline: the change is declarative, so a retry
        does only what is still missing.
        """
        while True:
            txn, seqno = self._send(change, deadline)
            self._wait(deadline, f"the reply to {change}",
                       lambda txn=txn: txn.commit() != Txn.INCOMPLETE)
            status = txn.commit()
            if status == Txn.UNCHANGED:
                return None
            if status == Txn.SUCCESS:
                return txn.get_increment_new_value()
            if status != Txn.TRY_AGAIN:
                raise DriverError(f"OVSDB refused {change}: {txn.get_error()}", obj=change)
            LOG.info("ovsdb: retrying (connection lost or a concurrent write): %s", change)
            self._wait(deadline, f"a retry of {change}",
                       lambda seqno=seqno: self._idl.change_seqno != seqno)

    def _send(self, change: Change, deadline: float) -> tuple[Txn, int]:
        """Build ``change`` against the replica and send it; the txn and the seqno it saw."""
        self._wait(deadline, "the OVSDB connection", lambda: self._idl.state == MONITORING)
        seqno = self._idl.change_seqno
        txn = Txn(self._idl)
        try:
            changed = build(self._idl, txn, change)
        except BaseException:
            txn.abort()
            raise
        if changed:
            ovs_row = next(iter(self._idl.tables["Open_vSwitch"].rows.values()))
            ovs_row.increment("next_cfg")
        txn.add_comment(f"dvr-agent: {change}")
        txn.commit()
        self._wake()  # the IDL thread flushes what the session could not send at once
        return txn, seqno

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        """Wait (lock held, released while waiting) until ``ready()``, or raise at the deadline."""
        if not self._cond.wait_for(ready, max(0.0, deadline - time.monotonic())):
            raise DriverError(f"timed out after {self.timeout} s waiting for {what}",
                              obj=self.connection)

    def _cur_cfg(self) -> int:
        row = next(iter(self._idl.tables["Open_vSwitch"].rows.values()), None)
        return row.cur_cfg if row is not None else -1

    def _ofports_known(self, names: set[str]) -> bool:
        """True once every interface in ``names`` that exists has an ofport, -1 or not."""
        return all(iface.ofport for iface in self._idl.tables["Interface"].rows.values()
                   if iface.name in names)

    def _ofports_assigned(self, names: frozenset[str]) -> bool:
        """True once every interface in ``names`` has an ofport; raises on ofport -1."""
        if not names:
            return True
        pending = set(names)
        for iface in self._idl.tables["Interface"].rows.values():
            if iface.name in pending:
                ofport = iface.ofport
                if ofport == [-1]:
                    error = iface.error[0] if iface.error else "no error given"
                    raise DriverError(f"interface {iface.name}: ovs-vswitchd could not add "
                                      f"it (ofport -1): {error}", obj=iface.name)
                if ofport:
                    pending.discard(iface.name)
        return not pending

