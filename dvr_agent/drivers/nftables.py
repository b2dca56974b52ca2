"""The agent's NAT: one nftables table of its own per router namespace.

``table ip dvr_agent_nat`` holds three base chains (prerouting/dstnat, postrouting/srcnat,
output/-100) with the rules of ``state.NatRules``, written as ``nft list table`` prints
them. Tables of others (``table ip myapp``, Neutron's iptables-nft tables) are never
touched: every command names our table.

``replace`` is ONE nft transaction: ``add table`` (so the next line cannot fail on a
missing table), ``delete table``, then the whole new table. The kernel commits the batch
as a unit, and a rule the kernel refuses (``dnat`` in postrouting) leaves the old table
as it was. An empty NatRules deletes the table, so our table never has zero rules. A
listing, though, is several netlink dumps (table and chains, then rules): one that
straddles a commit gets the rules of the new table, which name the new table's handle,
and drops them all, showing a table with no rules at all (seen once in a CI run, in the
functional test that lists during 200 replaces). ``read`` lists such a table again.

How nft is run. Reads: libnftables (the library behind the ``nft`` command) through
ctypes, by the calling thread entered into the namespace
(``netns_thread.run_in_netns``). PyPI has no maintained binding: there is no ``nftables``
distribution, only unmaintained copies of Debian's ``python3-nftables`` (itself a
~600-line ctypes wrapper, mostly JSON helpers, installed outside our virtualenv); we need
four C calls, so they are bound here. Writes: the ``nft`` command, in a child process
entered into the namespace (``nsenter --net``). libnftables 1.0.6 sends a write batch
through mnl_batch_talk(), which waits with select(): when its socket is descriptor 1024 or
above, glibc's FD_SET check aborts the whole process ("bit out of range 0 - FD_SETSIZE").
The agent keeps a socket or more per namespace, so from a few hundred routers on every new
socket, libnftables' too, is above 1024 (benchmarks/README.md, profile 2); a child has a
descriptor table of its own. Reads do not select() and stay in-process.
Measured with ``benchmarks/ovs_bench.py nft`` (1,000 namespaces, read + replace in each,
median of 3): libnftables on a thread 13.8 s, ``nsenter --net=... nft`` 19.7 s; one write
~14 ms against ~17 ms. Most of either is the kernel: one nf_tables commit in a namespace
takes ~13 ms of *waiting* (an RCU grace period on this kernel), not CPU, so the same work
on 16 threads takes 1.4 s (~700 namespaces/s), and a pass that only reads (nothing to
change) takes 0.5 s in all. So: read first and replace only what differs, and let the
reconciler replace namespaces in parallel when many change at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import subprocess
import threading

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.drivers.namespaces import is_namespace_mount
from dvr_agent.drivers.netns_thread import netns_path, run_in_netns
from dvr_agent.state import NatRules

LOG = logging.getLogger(__name__)

TABLE = "dvr_agent_nat"
FAMILY = "ip"
# (chain, header) in the order nft lists them; the header is what `nft list` prints.
CHAINS = (
    ("prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    ("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
    ("output", "type nat hook output priority -100; policy accept;"),
)
NSENTER, NFT = "nsenter", "nft"
WRITE_TIMEOUT = 60.0
_FORBIDDEN = ("\n", "\r", ";", "{", "}", "#")  # would end the rule or open a block in the batch


def render(rules: NatRules) -> str:
    """The table exactly as ``nft list table ip dvr_agent_nat`` prints it."""
    blocks = []
    for chain, header in CHAINS:
        lines = [f"\tchain {chain} {{", f"\t\t{header}"]
        lines += [f"\t\t{rule}" for rule in getattr(rules, chain)]
        lines.append("\t}")
        blocks.append("\n".join(lines) + "\n")
    return f"table {FAMILY} {TABLE} {{\n" + "\n".join(blocks) + "}\n"


def parse(listing: str) -> NatRules:
    """A ``nft list table`` output of our table back into NatRules (inverse of render)."""
    chains: dict[str, list[str]] = {chain: [] for chain, _ in CHAINS}
    headers = dict(CHAINS)
    current: str | None = None
    for raw in listing.splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            current = line.split()[1]
            chains.setdefault(current, [])
        elif line == "}":
            current = None
        elif current is not None and line and line != headers.get(current):
            chains[current].append(line)
    unknown = set(chains) - set(headers)
    if unknown:
        raise DriverError(f"table {TABLE} has chains we never make: {sorted(unknown)}",
                          obj=TABLE)
    return NatRules(**{chain: tuple(rules) for chain, rules in chains.items()})


def check(rules: NatRules) -> None:
    """InvalidInput unless every rule is one line that cannot escape its chain."""
    for chain, _ in CHAINS:
        value = getattr(rules, chain)
        if not isinstance(value, tuple):
            raise InvalidInput(f"nat {chain}: rules must be a tuple of strings", obj=rules)
        for rule in value:
            if not isinstance(rule, str) or not rule.strip():
                raise InvalidInput(f"nat {chain}: {rule!r} is not a rule", obj=rule)
            bad = [c for c in _FORBIDDEN if c in rule]
            if bad:
                raise InvalidInput(f"nat {chain}: rule {rule!r} contains {bad[0]!r}",
                                   obj=rule)


def _check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not namespace or "/" in namespace \
            or namespace in (".", ".."):
        raise InvalidInput(f"not a namespace name: {namespace!r}", obj=namespace)


READ_ATTEMPTS = 3  # listings of a table seen without rules (see above) before believing it


def read(namespace: str) -> NatRules | None:
    """Our table in ``namespace``; None when it does not exist."""
    _check_namespace(namespace)
    rules = NatRules()
    for _ in range(READ_ATTEMPTS):
        try:
            rules = parse(_run(namespace, f"list table {FAMILY} {TABLE}"))
        except _NoTable:
            return None
        if rules:
            break
    return rules


def replace(namespace: str, rules: NatRules) -> None:
    """Make our table in ``namespace`` hold exactly ``rules``, in one transaction."""
    _check_namespace(namespace)
    check(rules)
    batch = f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"
    if rules:
        batch += render(rules)
    _write(namespace, batch)
    LOG.debug("nat in %s: %s", namespace, "replaced" if rules else "table deleted")


def _write(namespace: str, commands: str) -> None:
    """Run a write batch with ``nft -f -`` in a child inside ``namespace`` (see above)."""
    path = netns_path(namespace)
    if not is_namespace_mount(path):
        raise DriverError(f"namespace {namespace} does not exist", obj=namespace,
                          errno=errno.ENOENT)
    try:
        proc = subprocess.run([NSENTER, f"--net={path}", "--", NFT, "-f", "-"],
                              input=commands, capture_output=True, text=True,
                              timeout=WRITE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"nft in {namespace}: {exc}", obj=namespace) from exc
    if proc.returncode != 0:
        raise DriverError(f"nft in {namespace}: {proc.stderr.strip() or 'failed'}",
                          obj=namespace)


# ---------------------------------------------------------------- libnftables


class _NoTable(DriverError):
    """nft said ENOENT: the table (not the namespace) does not exist."""


class _Lib:
    """The four libnftables calls we need, bound once per process."""

    _lock = threading.Lock()
    _lib: ctypes.CDLL | None = None

    @classmethod
    def get(cls) -> ctypes.CDLL:
        with cls._lock:
            if cls._lib is None:
                path = ctypes.util.find_library("nftables") or "libnftables.so.1"
                try:
                    lib = ctypes.CDLL(path, use_errno=True)
                except OSError as exc:
                    raise DriverError(f"libnftables not found ({path}): install nftables",
                                      obj=path) from exc
                lib.nft_ctx_new.restype = ctypes.c_void_p
                lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
                lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
                for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
                    getattr(lib, name).argtypes = [ctypes.c_void_p]
                for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
                    getattr(lib, name).argtypes = [ctypes.c_void_p]
                    getattr(lib, name).restype = ctypes.c_char_p
                lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
                lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
                cls._lib = lib
            return cls._lib


def _run_here(commands: str) -> tuple[int, str, str]:
    """Run ``commands`` as one nft batch in this thread's namespace: (rc, output, error).

    The context (and its netlink socket) is made here, after setns, so that it belongs
    to the namespace; it lives for one call.
    """
    lib = _Lib.get()
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise DriverError("nft_ctx_new failed", obj=TABLE)
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, commands.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        return rc, out, err
    finally:
        lib.nft_ctx_free(ctx)


def _run(namespace: str, commands: str) -> str:
    try:
        rc, out, err = run_in_netns(namespace, _run_here, commands)
    except FileNotFoundError as exc:
        raise DriverError(f"namespace {namespace} does not exist", obj=namespace,
                          errno=errno.ENOENT) from exc
    if rc != 0:
        message = f"nft in {namespace}: {err.strip() or 'failed'}"
        if "No such file or directory" in err:
            raise _NoTable(message, obj=namespace, errno=errno.ENOENT)
        raise DriverError(message, obj=namespace)
    return out
