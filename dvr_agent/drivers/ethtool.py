"""Transmit checksum offload of a device in a namespace, through pyroute2's ethtool ioctl.

Why: on Open vSwitch's userspace datapath a veth with tx checksum offload hands packets
over with the checksum still to be filled in, and nothing downstream fills it in: TCP
through the router fails while ping works. So every veth end the agent makes has tx
checksumming off (as ``ethtool -K DEV tx off``: the legacy ETHTOOL_STXCSUM turns off all
tx-checksum-* features, and the kernel drops TSO with them).

The ethtool ioctl acts on the namespace of the socket it is issued on, and pyroute2's
IoctlEthtool opens an AF_INET socket when constructed: built on a thread inside the
namespace (run_in_netns), it talks to that namespace's device.
"""

from __future__ import annotations

import errno
import logging

from pyroute2.ethtool.ioctl import IoctlEthtool, NoSuchDevice, NotSupportedError

from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.netlink_values import device as check_device
from dvr_agent.drivers.netns_thread import run_in_netns

LOG = logging.getLogger(__name__)

TX_CHECKSUMMING = "tx-checksumming"


def _tx_checksum(device: str, turn_off: bool) -> tuple[bool, bool]:
    """(was on, is on) for ``device`` in the calling thread's namespace."""
    ethtool = IoctlEthtool(device)
    try:
        was_on = ethtool.get_offload_flags()[TX_CHECKSUMMING]
        if turn_off and was_on:
            ethtool.set_offload_flag(TX_CHECKSUMMING, 0)
            return was_on, ethtool.get_offload_flags()[TX_CHECKSUMMING]
        return was_on, was_on
    finally:
        ethtool.close()


def _run(namespace: str | None, device: str, turn_off: bool) -> tuple[bool, bool]:
    check_device(device)
    try:
        if namespace is None:  # the caller's own: no thread to spawn (2,000 veths at scale)
            return _tx_checksum(device, turn_off)
        return run_in_netns(namespace, _tx_checksum, device, turn_off)
    except NoSuchDevice as exc:
        raise DriverError(f"no device {device} in {namespace}", obj=device,
                          errno=errno.ENODEV) from exc
    except NotSupportedError as exc:
        raise DriverError(f"{device}: tx checksum offload not supported", obj=device,
                          errno=errno.EOPNOTSUPP) from exc
    except FileNotFoundError as exc:  # the namespace
        raise DriverError(f"no namespace {namespace}", obj=namespace,
                          errno=errno.ENOENT) from exc
    except OSError as exc:
        raise DriverError(f"ethtool on {device}: {exc.strerror}", obj=device,
                          errno=exc.errno) from exc


def tx_checksum_enabled(namespace: str | None, device: str) -> bool:
    """Whether ``device`` in ``namespace`` (None: the agent's) offloads tx checksums."""
    return _run(namespace, device, turn_off=False)[1]


def tx_checksum_off(namespace: str | None, device: str) -> bool:
    """Turn tx checksum offload off; True if it was on (and is off now)."""
    was_on, is_on = _run(namespace, device, turn_off=True)
    if is_on:
        raise DriverError(f"{device}: tx checksum offload still on after turning it off",
                          obj=device, errno=errno.EOPNOTSUPP)
    if was_on:
        LOG.debug("tx checksum offload turned off on %s in %s", device,
                  namespace or "agent namespace")
    return was_on
