"""Errors of the drivers: they carry the object they were about and, where there is one, the errno.

The reconciler decides what to do with them (retry with tenacity, or give up on the key),
so a driver never swallows an error and never decides policy.
"""

from __future__ import annotations


class DriverError(Exception):
    """A driver could not do what it was asked: ``obj`` names the object, ``errno`` the cause."""

    def __init__(self, message: str, *, obj: object = None, errno: int | None = None):
        super().__init__(message)
        self.obj = obj
        self.errno = errno


class InvalidInput(DriverError, ValueError):
    """The request itself is malformed (a 16-character device name, a bad MAC or CIDR).

    Raised before anything is changed.
    """


class NotOurs(DriverError):
    """The request would touch something the agent does not own (e.g. ``myapp-1``).

    Raised before anything is changed.
    """
