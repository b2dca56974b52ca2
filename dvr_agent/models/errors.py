"""The one error of the models: a payload field that is missing or wrong.

Its path grows while the error propagates out of nested parsers, so a bad document names
the exact field (``routers[2]._floatingips[0].fixed_ip_address``): that path is what the
agent logs, and nothing past the parser ever sees a half-valid payload.
"""

from __future__ import annotations

_VALUE_REPR_MAX = 80  # a 10 MB string must not end up 10 MB long in a log line


class PayloadError(ValueError):
    """``path`` is the field, ``value`` what it held, ``reason`` what is wrong with it."""

    def __init__(self, path: str, value: object, reason: str) -> None:
        self.path = path
        self.value = value
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = repr(self.value)
        if len(shown) > _VALUE_REPR_MAX:
            shown = shown[:_VALUE_REPR_MAX] + "..."
        where = self.path or "<payload>"
        return f"{where}: {self.reason} (got {shown})"

    def within(self, segment: str | int) -> PayloadError:
        """The same error seen from one level up: ``key`` or ``[index]`` is prepended."""
        if isinstance(segment, int):
            head = f"[{segment}]"
            path = head + ("" if not self.path else
                           self.path if self.path.startswith("[") else "." + self.path)
        else:
            path = segment if not self.path else (
                segment + self.path if self.path.startswith("[") else f"{segment}.{self.path}")
        return PayloadError(path, self.value, self.reason)


class at:  # lower case: used as ``with at(key):``, like the function it replaced
    """Run a nested parse under ``segment``: its PayloadError comes out with the longer path.

    A class rather than a @contextmanager generator, for nesting the models write by
    hand. ``fields.field`` and ``fields.items``, which every field of every port of an
    ARP table goes through, catch and re-raise instead: even this class's calls were a
    fifth of parsing a port (benchmarks/README.md, fixes 19 and 25).
    """

    __slots__ = ("segment",)

    def __init__(self, segment: str | int) -> None:
        self.segment = segment

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, _tb: object) -> None:
        if isinstance(error, PayloadError):
            raise error.within(self.segment) from None
