"""The main thread's wait for a stop signal (SIGTERM from systemd or ``kill``).

Python runs signal handlers in the main thread only, between bytecodes. The kernel hands
a process-wide signal to any thread that does not block it; when that is another thread
(an oslo.messaging poller in ``ssl.read``, say), a main thread blocked in
``Event.wait()`` without a timeout is not interrupted, never runs the handler, and the
process ignores SIGTERM until it is killed. Seen in CI: the agent's main thread was still
in ``Event.wait`` 10 s after SIGTERM (faulthandler's dump, all other threads idle), and a
benchmark's agent once did not stop in 30 s. Waking every half second bounds the delay.
"""

from __future__ import annotations

import threading

WAKE_INTERVAL = 0.5  # seconds: how late a signal delivered to another thread is handled


def wait_until_set(event: threading.Event) -> None:
    """Return once ``event`` is set, running pending signal handlers meanwhile."""
    while not event.wait(WAKE_INTERVAL):
        pass
