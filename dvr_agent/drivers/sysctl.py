"""Sysctls inside a network namespace, read and written through /proc/sys/net.

pyroute2 has no sysctl API, and /proc/sys/net resolves against the namespace of the
*calling thread*; so the thread setns()es in for a whole batch of keys and comes back
(run_in_netns). Only ``net.*`` keys are per namespace: any other
key would silently change the whole host, so it is refused.

Keys are written as sysctl(8) writes them: dots between components, and a ``/`` inside
a component standing for a dot in the name (``net.ipv4.conf.eth0/100.rp_filter`` is
/proc/sys/net/ipv4/conf/eth0.100/rp_filter). A device name with dots may also be given
as is in the two per-device trees, ``net.ipv{4,6}.conf.<dev>.<leaf>`` and
``net.ipv{4,6}.neigh.<dev>.<leaf>``: there the device is everything between the third
component and the last, since no leaf name has a dot.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Mapping

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.drivers.netlink_socket import AGENT_NAMESPACE
from dvr_agent.drivers.netlink_values import device as check_device
from dvr_agent.drivers.netns_thread import run_in_netns

LOG = logging.getLogger(__name__)
PROC_SYS = "/proc/sys"

_PER_DEVICE_TREES = {("net", "ipv4", "conf"), ("net", "ipv6", "conf"),
                     ("net", "ipv4", "neigh"), ("net", "ipv6", "neigh")}


def sysctl_path(key: str) -> str:
    """The /proc/sys file of a ``net.*`` key; InvalidInput for anything else."""
    if not isinstance(key, str) or not key.startswith("net.") or "\0" in key:
        raise InvalidInput(f"invalid sysctl key {key!r}: only net.* keys are per namespace",
                           obj=key)
    parts = key.split(".")
    if tuple(parts[:3]) in _PER_DEVICE_TREES and len(parts) > 5:
        parts = [*parts[:3], ".".join(parts[3:-1]), parts[-1]]  # a device name with dots
    parts = [p.replace("/", ".") for p in parts]  # sysctl(8): '/' in a key is a '.'
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid sysctl key {key!r}", obj=key)
    if tuple(parts[:3]) in _PER_DEVICE_TREES and len(parts) == 5 \
            and parts[3] not in ("all", "default"):
        check_device(parts[3], obj=key)
    return os.path.join(PROC_SYS, *parts)


def _normal(value: str) -> str:
    """Values as compared and returned: whitespace runs (tabs in multi-value keys) as one space."""
    return " ".join(value.split())


def _read(key: str, path: str) -> str:
    """One value. Through os.open/os.read rather than open(): a text file object costs
    more than the read itself, and a warm restart at 300 routers reads ~3,000 of these
    (py-spy: 4 % of its samples were this function)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return _normal(os.read(fd, 4096).decode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise DriverError(f"reading sysctl {key}: {exc.strerror}", obj=key,
                          errno=exc.errno) from exc


def _write(key: str, path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise DriverError(f"writing sysctl {key}={value}: {exc.strerror}", obj=key,
                          errno=exc.errno) from exc


def _read_all(paths: Mapping[str, str]) -> dict[str, str]:
    return {key: _read(key, path) for key, path in paths.items()}


def _write_changed(paths: Mapping[str, str], values: Mapping[str, str]) -> list[str]:
    changed = []
    for key, path in paths.items():
        if _read(key, path) != _normal(values[key]):
            _write(key, path, values[key])
            changed.append(key)
    return changed


def _in_namespace(namespace: str | None, fn, *args):
    """``fn(*args)`` on a thread in ``namespace``; a missing namespace is a DriverError.

    fn wraps its own file errors, so a FileNotFoundError here is the namespace's.
    """
    try:
        return run_in_netns(AGENT_NAMESPACE if namespace is None else namespace, fn, *args)
    except FileNotFoundError as exc:
        raise DriverError(f"no namespace {namespace}", obj=namespace,
                          errno=errno.ENOENT) from exc


def sysctls_get(namespace: str | None, keys: Iterable[str]) -> dict[str, str]:
    """The values of ``keys`` in ``namespace`` (None: the agent's), on one thread."""
    paths = {key: sysctl_path(key) for key in keys}
    return _in_namespace(namespace, _read_all, paths)


def sysctls_set(namespace: str | None, values: Mapping[str, str]) -> int:
    """Write the values that differ (all keys are checked first); the number changed."""
    paths = {key: sysctl_path(key) for key in values}
    for key, value in values.items():
        if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
            raise InvalidInput(f"invalid value {value!r} for sysctl {key}", obj=key)
    if not paths:
        return 0
    changed = _in_namespace(namespace, _write_changed, paths, values)
    for key in changed:
        LOG.debug("sysctl %s=%s set in %s", key, values[key], namespace or "agent namespace")
    return len(changed)


def sysctl_get(namespace: str | None, key: str) -> str:
    return sysctls_get(namespace, [key])[key]


def sysctl_set(namespace: str | None, key: str, value: str) -> bool:
    """Set one sysctl; True if it changed."""
    return sysctls_set(namespace, {key: value}) == 1
