"""Keep eventlet out of every dvr-agent process: plain threads only.

pip installs eventlet whatever we do (oslo.service hard-requires it), and two of our
dependencies import it opportunistically: python-ovs's poller try-imports it to detect
monkey-patching, and oslo.service's default backend is eventlet. A half-imported
eventlet in a threaded daemon is how hangs nobody can explain are made, so an import
hook refuses it outright, and oslo.service is told to use its threading backend.
Unlike ``sys.modules["eventlet"] = None`` the hook leaves no entry behind:
``"eventlet" not in sys.modules`` stays true, which the tests assert.
"""

from __future__ import annotations

import importlib.abc
import sys

_BLOCKED = "eventlet"


class _RefuseEventlet(importlib.abc.MetaPathFinder):
    """A meta path finder that makes ``import eventlet`` fail like a missing package."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == _BLOCKED or fullname.startswith(_BLOCKED + "."):
            raise ModuleNotFoundError(
                f"dvr-agent runs on threads only; {fullname} is refused", name=fullname
            )
        return None


def install() -> None:
    """Refuse eventlet from now on and make threads oslo.service's default (idempotent).

    Runs when the package is imported, before any module of ours can import ovs or
    oslo.messaging. The backend is chosen through oslo.service's default hook, which
    costs nothing until oslo.messaging is actually imported (the pure compiler never is).
    """
    if not any(isinstance(f, _RefuseEventlet) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefuseEventlet())
    try:
        from oslo_service import backend
    except ImportError:  # the compiler's unit tests need no oslo at all
        return
    backend.register_backend_default_hook(lambda: backend.BackendType.THREADING)
