"""What a pass must announce with gratuitous ARP: addresses it just put on the wire.

Pure, from the desired state and the diff that was applied: an IPv4 address added on a
router's ports facing other machines (qg- gateway and centralized floating IPs, qr-
interface addresses, fg- of a fip namespace), and a floating IP newly routed into a fip
namespace (a /32 route via fpr-; fg- answers for it by proxy ARP, so fg- announces it).
Neighbours that cached the address at another MAC, such as the upstream router after a
floating IP moved to another host, learn the new place at once instead of after their
entry goes stale. A restart that changes nothing announces nothing.

What a pass takes off the wire is *withdrawn*: rounds still queued for it are dropped, so
a host that just gave a floating IP away never announces it after its new host did.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from dvr_agent import names
from dvr_agent.reconcile.diff import KeyDiff
from dvr_agent.state import MAIN_TABLE, KeyState

ANNOUNCING_DEVICES = (names.EXTERNAL_DEV_PREFIX, names.INTERNAL_DEV_PREFIX,
                      names.FIP_EXT_DEV_PREFIX)


class Announcement(NamedTuple):
    namespace: str
    device: str
    ip: str


class Withdrawal(NamedTuple):
    namespace: str
    ip: str | None  # None: everything in the namespace (it was deleted)


def announcements(desired: KeyState, diff: KeyDiff) -> list[Announcement]:
    wanted = {ns.name: ns for ns in desired.namespaces}
    found: set[Announcement] = set()
    for change in diff.namespaces:
        ns = wanted.get(change.name)
        if ns is None:
            continue
        for address in change.addr_add:
            ip = ipaddress.ip_interface(address.cidr).ip
            if ip.version == 4 and address.device.startswith(ANNOUNCING_DEVICES):
                found.add(Announcement(ns.name, address.device, str(ip)))
        fg = next((link.name for link in ns.links
                   if link.name.startswith(names.FIP_EXT_DEV_PREFIX)), None)
        if fg is None:
            continue
        for route in change.route_add:
            if (route.table == MAIN_TABLE and route.dst.endswith("/32") and route.device
                    and route.device.startswith(names.FIP_2_ROUTER_DEV_PREFIX)):
                found.add(Announcement(ns.name, fg, route.dst.removesuffix("/32")))
    return sorted(found)


def withdrawals(diff: KeyDiff) -> list[Withdrawal]:
    found: set[Withdrawal] = set()
    for change in diff.namespaces:
        if change.delete:
            found.add(Withdrawal(change.name, None))
            continue
        found |= {Withdrawal(change.name, str(ipaddress.ip_interface(a.cidr).ip))
                  for a in change.addr_del}
        found |= {Withdrawal(change.name, r.dst.removesuffix("/32")) for r in change.route_del
                  if r.table == MAIN_TABLE and r.dst.endswith("/32")}
    return sorted(found, key=lambda w: (w.namespace, w.ip or ""))
