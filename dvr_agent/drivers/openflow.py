"""OpenFlow on a bridge through ``ovs-ofctl``: dump our flows, apply a change set atomically.

Why ovs-ofctl and not an in-process OpenFlow codec: ovs-ofctl parses and encodes in C,
~100k flows/s inside one ``--bundle`` (os-ken's Python encoder manages ~20k/s), and it
needs nothing of ours to maintain. The cost is one fork+exec per *call*, never per flow:
every ``apply`` is ONE ``ovs-ofctl -O OpenFlow14 --bundle --no-names add-flows <bridge> -``
fed on stdin with ``delete_strict``/``add`` lines, so its flow-mods commit together or not
at all (an OpenFlow 1.4 bundle is atomic: a flow the switch rejects rolls back the rest).
A pass sends one per bridge, or a few per bridge for thousands of flows, each key's
whole in one (``reconcile.apply.split_by_key``).
``--no-names`` always: our flows name ports and tables by number, and without it ovs-ofctl
first downloads the switch's table features (30 replies) to learn table names, which
tripled a small change's cost (16 -> 51 ms at 300 routers, measured on an idle switch).
A flow whose ident (table, priority, match) exists with other actions or another cookie
is modified by its "add" alone, which replaces it (see ``bundle_text``).

Canonical form. ``state.Flow`` holds a flow exactly as ``ovs-ofctl --no-stats --no-names
dump-flows`` prints it with OpenFlow 1.0 (the default; what the seed shows), so that a
dumped flow compares equal to the compiled one and a pass over an unchanged bridge
changes nothing. A flow compiled in any other spelling is *rewritten on every pass*.
What ovs-ofctl/ovs-vswitchd 3.1 print (pinned by tests/functional/test_openflow_canonical.py,
which doubles as the reference for the compiler):

match
  - protocol shorthands, first: ``arp`` (not ``dl_type=0x0806``), ``ip``, ``icmp6`` (not
    ``ipv6,nw_proto=58``); ICMPv6 type is ``icmp_type=134`` (not ``icmpv6_type``)
  - MACs lower-case; masks as ``dl_dst=01:00:00:00:00:00/01:00:00:00:00:00``
  - a /32 prefix is dropped (``nw_dst=10.0.0.1``); others stay (``arp_tpa=10.0.0.0/24``)
  - ``tun_id`` in hex (``tun_id=0x26``, never ``38``); ``dl_vlan=2`` in decimal (never ``0x2``)
  - ``vlan_tci=0x0000`` ("untagged") prints with its mask: ``vlan_tci=0x0000/0x1fff``
  - ports by number (``in_port=1``): dump runs with ``--no-names``, take ofports from OVSDB
  - match order is free (``Flow`` compares the match as a set), so any order is canonical
  - ``table=0``, ``priority=32768`` and ``cookie=0`` are omitted by dump; parsed back as such
actions
  - ``mod_dl_src:M`` / ``mod_dl_dst:M`` (``set_field:M->eth_src`` prints as mod_dl_src)
  - ``strip_vlan`` (not ``pop_vlan``); ``mod_vlan_vid:N`` (also for push_vlan+set_field)
  - ``set_tunnel:0x26``, ``set_tunnel64:`` and ``set_field:..->tun_id`` all print as
    ``load:0x26->NXM_NX_TUN_ID[]``: write the ``load:`` form
  - ``output:N`` (a bare ``N`` prints as ``output:N``); ``IN_PORT`` (not ``in_port`` or
    ``output:IN_PORT``); ``NORMAL`` upper-case; ``resubmit(,N)``; ``goto_table:N`` prints
    as ``resubmit(,N)``; an empty action list prints as ``drop``
  - ``learn(...)`` prints as written with NXM field names (neutron-dvr-digest §3.2 table 10);
    a learn() must not carry our cookie, or the flows it learns would be ours to reap
  - ARP responder moves/loads print as ``move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]``,
    ``load:0x2->NXM_OF_ARP_OP[]``, ``load:0xfa163e000005->NXM_NX_ARP_SHA[]``,
    ``load:0xa000005->NXM_OF_ARP_SPA[]`` (hex without leading zeros)
``Flow`` has no timeouts: dump ignores idle/hard timeouts (the agent writes none).

Ownership: every flow we write or delete carries our cookie prefix (``state.is_our_cookie``);
deletes are strict *and* cookie-exact, so a flow of somebody else is never touched.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterable

from dvr_agent import names, state
from dvr_agent.drivers.errors import DriverError, InvalidInput, NotOurs
from dvr_agent.state import COOKIE_MASK_ALL, Flow

LOG = logging.getLogger(__name__)

DEFAULT_PRIORITY = 32768  # OFP_DEFAULT_PRIORITY: dump-flows leaves it out
DEFAULT_RUNDIR = "/run/openvswitch"
OFCTL = "ovs-ofctl"
# Per-flow fields ovs-ofctl prints before the match; none of them is part of a Flow.
_HEADER_KEYS = frozenset({
    "cookie", "duration", "table", "n_packets", "n_bytes", "idle_age", "hard_age",
    "idle_timeout", "hard_timeout", "importance", "send_flow_rem", "check_overlap",
    "reset_counts", "no_packet_counts", "no_byte_counts", "out_port", "out_group",
})
_ACTIONS_SEP = " actions="
_LINE_ERROR = re.compile(r"^ovs-ofctl: -:(\d+): (.*)$", re.MULTILINE)
_COOKIE = re.compile(r"^\s*cookie=(0x[0-9a-f]+)", re.MULTILINE)  # first field of a flow line


def parse_flow(bridge: str, line: str) -> Flow | None:
    """One line of ``dump-flows --no-stats --no-names`` (OpenFlow 1.0) as a Flow.

    None for lines that are not flows (a reply header such as ``NXST_FLOW reply``).
    Hand-written because nothing in python-ovs or ovsdbapp parses ovs-ofctl's text; the
    format is small: ``", "``-separated header fields, then the comma-separated match
    (starting with ``priority=`` unless it is the default), then `` actions=``.
    """
    text = line.strip()
    head, sep, actions = text.partition(_ACTIONS_SEP)
    if not sep:
        return None
    cookie, table, priority = 0, 0, DEFAULT_PRIORITY
    match: list[str] = []
    for token in head.replace(", ", ",").split(","):
        if not token:
            continue
        key, _, value = token.partition("=")
        if key == "cookie":
            cookie = int(value, 16)
        elif key == "table":
            table = int(value)
        elif key == "priority":
            priority = int(value)
        elif key not in _HEADER_KEYS:
            match.append(token)
    return Flow(bridge=bridge, table=table, priority=priority, match=tuple(match),
                actions=actions, cookie=cookie)


def parse_dump(bridge: str, text: str) -> set[Flow]:
    """Every flow in a ``dump-flows`` output."""
    flows = (parse_flow(bridge, line) for line in text.splitlines())
    return {f for f in flows if f is not None}


def bundle_text(add: Iterable[Flow], delete: Iterable[Flow]) -> str:
    """The ``add-flows`` input of one bundle: strict, cookie-exact deletes, then adds.

    A delete of an ident that is also added is left out: an OpenFlow "add" replaces the
    flow with the same table, priority and match (cookie and actions included), so the
    add alone is the modify, atomic like the rest of the bundle. That also avoids the slow
    path of a cookie-masked strict delete: ovs-vswitchd finds it through its cookie index,
    which costs O(flows with that cookie) each (measured: 1,000 such deletes among 10,000
    flows of one cookie take 0.35 s in one bundle, 1,000 replacing adds 0.03 s). With one
    cookie per key that is a key's flows, not the bridge's. ``cookie=C/-1`` on a delete
    keeps it from touching a flow with the same match that carries another cookie.
    """
    add = list(add)
    added = {f.ident for f in add}
    lines = [f"delete_strict {_strict_spec(f)}" for f in delete if f.ident not in added]
    lines += [f"add {f.spec()}" for f in add]
    return "".join(line + "\n" for line in lines)


def _strict_spec(flow: Flow) -> str:
    match = "".join("," + m for m in flow.match)
    return f"cookie={flow.cookie:#x}/-1,table={flow.table},priority={flow.priority}{match}"


class OpenFlow:
    """Flows of the bridges of one ovs-vswitchd, reached by their ``<rundir>/<br>.mgmt`` sockets."""

    def __init__(self, rundir: str = DEFAULT_RUNDIR, *, timeout: float = 120.0) -> None:
        self.rundir = rundir
        self.timeout = timeout

    def target(self, bridge: str) -> str:
        return f"unix:{self.rundir}/{bridge}.mgmt"

    def dump(self, bridge: str, cookie: int | None = None,
             mask: int | None = None) -> set[Flow]:
        """The bridge's flows, or those whose cookie matches ``cookie``/``mask``.

        ``dump(br, cookie=state.COOKIE_PREFIX, mask=state.COOKIE_PREFIX_MASK)`` gives every
        flow of ours; ``dump(br, cookie=state.cookie_for(key))`` one key's flows.
        """
        return parse_dump(bridge, self._dump_text(bridge, cookie, mask))

    def cookies(self, bridge: str, cookie: int, mask: int = COOKIE_MASK_ALL) -> set[int]:
        """The cookies of the flows ``dump(bridge, cookie, mask)`` would return.

        For finding stale keys: making a Flow of each line was half of what the agent's
        start spent on flow dumps, for a question about cookies only.
        """
        return {int(found, 16) for found in _COOKIE.findall(
            self._dump_text(bridge, cookie, mask))}

    def _dump_text(self, bridge: str, cookie: int | None, mask: int | None) -> str:
        _check_bridge(bridge)
        argv = [OFCTL, "--no-stats", "--no-names", "dump-flows", self.target(bridge)]
        if cookie is not None:
            mask = COOKIE_MASK_ALL if mask is None else mask
            _check_cookie(cookie, mask)
            argv.append(f"cookie={cookie:#x}/{mask:#x}")
        elif mask is not None:
            raise InvalidInput("a cookie mask needs a cookie", obj=bridge)
        return self._run(bridge, argv)

    def apply(self, bridge: str, add: Iterable[Flow] = (), delete: Iterable[Flow] = ()) -> None:
        """Delete ``delete`` and add ``add`` on ``bridge``, all in ONE atomic bundle.

        Raises DriverError with ovs-ofctl's message and the offending line; then nothing
        of the bundle is applied.
        """
        add, delete = list(add), list(delete)
        _check_bridge(bridge)
        for flow in (*delete, *add):
            _check_flow(bridge, flow)
        if len({f.ident for f in add}) != len(add):
            raise InvalidInput(f"{bridge}: two flows to add with one table, priority and "
                               "match (OpenFlow keeps only one)", obj=bridge)
        if not add and not delete:
            return
        text = bundle_text(add, delete)
        argv = [OFCTL, "-O", "OpenFlow14", "--bundle", "--no-names", "add-flows",
                self.target(bridge), "-"]
        self._run(bridge, argv, stdin=text)
        LOG.info("flows on %s: %d deleted, %d added", bridge, len(delete), len(add))

    def delete_cookie(self, bridge: str, cookie: int, mask: int = COOKIE_MASK_ALL) -> None:
        """Delete every flow whose cookie matches ``cookie``/``mask`` (all tables).

        The mask must cover our cookie prefix, so a flow of somebody else never matches.
        """
        _check_bridge(bridge)
        _check_cookie(cookie, mask)
        argv = [OFCTL, "-O", "OpenFlow14", "--no-names", "del-flows", self.target(bridge),
                f"cookie={cookie:#x}/{mask:#x}"]
        self._run(bridge, argv)
        LOG.info("flows on %s with cookie %#x/%#x deleted", bridge, cookie, mask)

    def _run(self, bridge: str, argv: list[str], stdin: str | None = None) -> str:
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DriverError(f"{bridge}: ovs-ofctl timed out after {self.timeout} s",
                              obj=bridge) from exc
        if proc.returncode != 0:
            raise DriverError(_describe_failure(bridge, proc.stderr, stdin), obj=bridge)
        return proc.stdout


def _describe_failure(bridge: str, stderr: str, stdin: str | None) -> str:
    """ovs-ofctl's message, with the offending input line when it names one (``-:N:``)."""
    message = stderr.strip() or "ovs-ofctl failed without a message"
    found = _LINE_ERROR.search(stderr)
    if found and stdin is not None:
        number = int(found.group(1))
        lines = stdin.splitlines()
        if 0 < number <= len(lines):
            return f"{bridge}: {found.group(2)} in line {number}: {lines[number - 1]}"
    return f"{bridge}: {message}"


def _check_bridge(bridge: str) -> None:
    if not names.valid_device_name(bridge):
        raise InvalidInput(f"not a bridge name: {bridge!r}", obj=bridge)


def _check_cookie(cookie: int, mask: int) -> None:
    if not (0 <= cookie <= COOKIE_MASK_ALL and 0 <= mask <= COOKIE_MASK_ALL):
        raise InvalidInput(f"cookie {cookie:#x}/{mask:#x} is not 64 bits", obj=cookie)
    if mask & state.COOKIE_PREFIX_MASK != state.COOKIE_PREFIX_MASK \
            or not state.is_our_cookie(cookie):
        raise NotOurs(f"cookie {cookie:#x}/{mask:#x} could match flows that are not ours",
                      obj=cookie)


def _check_flow(bridge: str, flow: Flow) -> None:
    """A flow we may write into a bundle: ours, for this bridge, one line of text."""
    if flow.bridge != bridge:
        raise InvalidInput(f"flow for {flow.bridge} applied to {bridge}: {flow.render()}",
                           obj=flow)
    if not state.is_our_cookie(flow.cookie) or flow.cookie > COOKIE_MASK_ALL:
        raise NotOurs(f"flow without our cookie ({flow.cookie:#x}): {flow.render()}", obj=flow)
    if not 0 <= flow.table <= 254 or not 0 <= flow.priority <= 65535:
        raise InvalidInput(f"table or priority out of range: {flow.render()}", obj=flow)
    text = flow.actions + "".join(flow.match)
    if any(c in text for c in "\n\r") or any(not m or "," in m or " " in m for m in flow.match):
        raise InvalidInput(f"malformed match or actions: {flow.render()!r}", obj=flow)
