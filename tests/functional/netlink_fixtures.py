"""Fixtures of the netlink driver tests: fresh namespaces of ours, removed afterwards.

A test module takes them by assignment (`new_namespace = netlink_fixtures.new_namespace`):
pytest finds fixtures by name in the module, and `netlink` needs `new_namespace` there too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from dvr_agent import names
from dvr_agent.drivers.namespaces import Namespaces
from dvr_agent.drivers.netlink import Netlink


@pytest.fixture
def new_namespace() -> Iterator[Callable[[], str]]:
    """Make ``qrouter-<uuid4>`` namespaces on demand; every one is deleted after the test."""
    made: list[str] = []
    namespaces = Namespaces()

    def make() -> str:
        name = names.qrouter_ns_name(names.new_uuid())
        assert namespaces.create(name)
        made.append(name)
        return name

    yield make
    for name in made:
        namespaces.delete(name)


@pytest.fixture
def netlink(new_namespace) -> Iterator[Netlink]:
    """A Netlink on a fresh namespace."""
    with Netlink(new_namespace()) as nl:
        yield nl


def ip(*args: str) -> str:
    """iproute2, only to cross-check what the drivers did (the drivers never call it)."""
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout
