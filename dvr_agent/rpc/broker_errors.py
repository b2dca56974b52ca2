"""The last thing the broker connection complained about, for an error message that helps.

oslo.messaging retries a failing connection itself and only logs why (refused, a TLS
certificate that does not verify, a wrong password); the caller just sees a timeout. When
the agent gives up, it says why in its one fatal line, taken from these logs.
"""

from __future__ import annotations

import contextlib
import logging

import amqp.exceptions
import kombu.exceptions
import oslo_messaging

_DRIVER_LOGGER = "oslo.messaging._drivers.impl_rabbit"  # oslo.messaging names it so

# What an RPC call can raise when the broker cannot be used. oslo.messaging wraps what it
# retries in MessagingException, but lets a broker's refusal (a wrong password: amqp's
# AccessRefused) and some socket errors through as they are.
RPC_FAILURES: tuple[type[BaseException], ...] = (
    oslo_messaging.MessagingException, amqp.exceptions.AMQPError, kombu.exceptions.KombuError,
    OSError)


class LastBrokerError(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # a record that does not format keeps the previous message
        with contextlib.suppress(Exception):
            self.message = record.getMessage()


def watch() -> LastBrokerError:
    """Start recording; the returned handler's ``message`` is the latest complaint."""
    handler = LastBrokerError()
    logging.getLogger(_DRIVER_LOGGER).addHandler(handler)
    return handler
