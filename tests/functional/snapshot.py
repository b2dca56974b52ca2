"""Everything of ours on the test host, read back as plain values: for "nothing changed",
"nothing duplicated", "nothing leaked" assertions across agent restarts."""

from __future__ import annotations

from pyroute2 import netns

from dvr_agent import names
from dvr_agent.drivers import nftables
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.state import COOKIE_PREFIX, COOKIE_PREFIX_MASK


def namespace_state(name: str) -> dict:
    with Netlink(name) as nl:
        links = {n: (i.kind, i.mac, i.mtu, i.up, i.index) for n, i in nl.links().items()}
        return {"links": links, "addresses": sorted(nl.addresses()),
                "routes": sorted(nl.routes(), key=repr), "rules": sorted(nl.rules(), key=repr),
                "neighbours": sorted(nl.neighbours()), "nat": nftables.read(name)}


def host_snapshot(ovs) -> dict:
    """Namespaces (with device indexes: a re-created device gets a new one), flows of our
    cookies, and our OVS ports with their ofports."""
    ours = sorted(n for n in netns.listnetns() if names.is_owned_namespace(n))
    flows = {}
    for bridge in ("br-int", "br-tun", "br-ex"):
        dump = ovs.ofctl("--no-stats", "dump-flows", ovs.mgmt(bridge),
                         f"cookie={COOKIE_PREFIX:#x}/{COOKIE_PREFIX_MASK:#x}")
        flows[bridge] = sorted(line.strip() for line in dump.splitlines()[1:])
    ports = ovs.vsctl("--format=csv", "--columns=name,ofport,external_ids", "list", "Interface")
    return {"namespaces": {n: namespace_state(n) for n in ours}, "flows": flows,
            "interfaces": sorted(ports.splitlines())}


def differences(before: dict, after: dict) -> list[str]:
    """What changed between two snapshots, readably (for assertion messages)."""
    out = []
    for ns in sorted(set(before["namespaces"]) | set(after["namespaces"])):
        a, b = before["namespaces"].get(ns), after["namespaces"].get(ns)
        if a != b:
            if a is None or b is None:
                out.append(f"namespace {ns}: {'appeared' if a is None else 'gone'}")
                continue
            out += [f"{ns} {part}: {a[part]!r} -> {b[part]!r}" for part in a if a[part] != b[part]]
    for bridge in before["flows"]:
        gone = set(before["flows"][bridge]) - set(after["flows"][bridge])
        new = set(after["flows"][bridge]) - set(before["flows"][bridge])
        out += [f"{bridge} - {f}" for f in sorted(gone)] + [f"{bridge} + {f}" for f in sorted(new)]
    if before["interfaces"] != after["interfaces"]:
        out.append(f"interfaces: {before['interfaces']} -> {after['interfaces']}")
    return out


def shape(ovs) -> dict:
    """A snapshot without what legitimately differs after re-creation (device indexes,
    ofports, flows naming ports by number): equal shapes mean the same objects, each once."""
    snap = host_snapshot(ovs)
    for state in snap["namespaces"].values():
        state["links"] = {n: link[:-1] for n, link in state["links"].items()}
    for bridge in snap["flows"]:
        dump = ovs.ofctl("--no-stats", "--names", "dump-flows", ovs.mgmt(bridge),
                         f"cookie={COOKIE_PREFIX:#x}/{COOKIE_PREFIX_MASK:#x}")
        snap["flows"][bridge] = sorted(line.strip() for line in dump.splitlines()[1:])
    snap["interfaces"] = sorted(ovs.vsctl("--format=csv", "--columns=name,external_ids",
                                          "list", "Interface").splitlines())
    return snap
