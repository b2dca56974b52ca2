"""Errors a management request can answer with: one clear line, and nothing changed.

They cross the RPC bus by class name (an oslo.messaging RemoteError), and dvrctl's client
raises them again as these classes.
"""

from __future__ import annotations


class ManagementError(Exception):
    """A request that cannot be done as asked; the message says what is wrong."""


class BadRequest(ManagementError):
    """The request is malformed: a bad CIDR, an address outside its subnet, an unknown field."""


class NotFound(ManagementError):
    """A name or id that matches nothing."""


class Conflict(ManagementError):
    """The request collides with the current state: an address in use, a router with ports."""
