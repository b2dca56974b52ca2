"""systemd's notify protocol (READY=1, STATUS=, WATCHDOG=1, STOPPING=1) over $NOTIFY_SOCKET.

Hand-written because the protocol is one datagram of text and the Python bindings
(systemd-python) need libsystemd headers to build; ~20 lines beat a compiled
dependency. Without systemd ($NOTIFY_SOCKET unset) every call is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self._address = address or None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str) -> None:
        """notify(READY="1", STATUS="3 routers") sends 'READY=1\\nSTATUS=3 routers'."""
        if self._address is None:
            return
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # never block: a reader that is slow (or gone) must not stall a stop or the
            # watchdog thread; a dropped STATUS is harmless, the next one follows
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError,
                                     FileNotFoundError):
                sock.sendto(message, self._address)

    def ready(self, status: str) -> None:
        self.notify(READY="1", STATUS=status)

    def status(self, status: str) -> None:
        self.notify(STATUS=status)

    def watchdog(self) -> None:
        self.notify(WATCHDOG="1")

    def stopping(self) -> None:
        self.notify(STOPPING="1")


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec for this process, or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000
