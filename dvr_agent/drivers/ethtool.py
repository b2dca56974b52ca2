"""Transmit checksum offload of a device in a namespace, through pyroute2's ethtool ioctl.

Why: on Open vSwitch's userspace datapath a veth with tx checksum offload hands packets
over with the checksum still to be filled in, and nothing downstream fills it in: TCP
through the router fails while ping works. So every veth end the agent makes has tx
checksumming off (as ``ethtool -K DEV tx off``: the legacy ETHTOOL_STXCSUM turns off all
tx-checksum-* features, and the kernel drops TSO with them).

The ethtool ioctl acts on the namespace of the socket it is issued on, and pyroute2's
IoctlEthtool opens an AF_INET socket when constructed: built while the thread is inside
the namespace (run_in_netns), it talks to that namespace's device.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable

from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.netlink_values import device as check_device
from dvr_agent.drivers.netns_thread import run_in_netns

LOG = logging.getLogger(__name__)

TX_CHECKSUMMING = "tx-checksumming"


def _tx_checksum(device: str, turn_off: bool) -> tuple[bool, bool]:
    """(was on, is on) for ``device`` in the calling thread's namespace."""
    from pyroute2.ethtool.ioctl import IoctlEthtool  # imported by _run first

    ethtool = IoctlEthtool(device)
    try:
        was_on = ethtool.get_offload_flags()[TX_CHECKSUMMING]
        if turn_off and was_on:
            ethtool.set_offload_flag(TX_CHECKSUMMING, 0)
            return was_on, ethtool.get_offload_flags()[TX_CHECKSUMMING]
        return was_on, was_on
    finally:
        ethtool.close()


def _each(devices: list[str], turn_off: bool) -> list[tuple[bool, bool]]:
    results = []
    for device in devices:
        try:
            results.append(_tx_checksum(device, turn_off))
        except Exception as exc:
            exc.device = device  # type: ignore[attr-defined]  # named in the DriverError
            raise
    return results


def _run(namespace: str | None, devices: list[str], turn_off: bool) -> list[tuple[bool, bool]]:
    """(was on, is on) of each device; one thread into the namespace for all of them.

    pyroute2 is imported at the first call, not with the drivers: see netlink_pyroute2.py.
    """
    from pyroute2.ethtool.ioctl import NoSuchDevice, NotSupportedError

    for device in devices:
        check_device(device)
    try:
        if namespace is None:  # the caller's own: no thread to spawn (2,000 veths at scale)
            return _each(devices, turn_off)
        return run_in_netns(namespace, _each, devices, turn_off)
    except NoSuchDevice as exc:
        device = getattr(exc, "device", devices[0])
        raise DriverError(f"no device {device} in {namespace}", obj=device,
                          errno=errno.ENODEV) from exc
    except NotSupportedError as exc:
        device = getattr(exc, "device", devices[0])
        raise DriverError(f"{device}: tx checksum offload not supported", obj=device,
                          errno=errno.EOPNOTSUPP) from exc
    except FileNotFoundError as exc:  # the namespace
        raise DriverError(f"no namespace {namespace}", obj=namespace,
                          errno=errno.ENOENT) from exc
    except OSError as exc:
        device = getattr(exc, "device", devices[0])
        raise DriverError(f"ethtool on {device}: {exc.strerror}", obj=device,
                          errno=exc.errno) from exc


def tx_checksum_enabled(namespace: str | None, device: str) -> bool:
    """Whether ``device`` in ``namespace`` (None: the agent's) offloads tx checksums."""
    return _run(namespace, [device], turn_off=False)[0][1]


def tx_checksum_off(namespace: str | None, device: str) -> bool:
    """Turn tx checksum offload off; True if it was on (and is off now)."""
    return tx_checksum_off_all(namespace, [device]) == 1


def tx_checksum_off_all(namespace: str | None, devices: Iterable[str]) -> int:
    """Turn tx checksum offload off on every device of ``namespace``, from one thread in
    there; how many had it on (and have it off now)."""
    devices = list(devices)
    turned = 0
    for device, (was_on, is_on) in zip(devices, _run(namespace, devices, turn_off=True),
                                       strict=True):
        if is_on:
            raise DriverError(f"{device}: tx checksum offload still on after turning it off",
                              obj=device, errno=errno.EOPNOTSUPP)
        if was_on:
            turned += 1
            LOG.debug("tx checksum offload turned off on %s in %s", device,
                      namespace or "agent namespace")
    return turned
