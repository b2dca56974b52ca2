"""run_in_netns on the real kernel: the calling thread works inside the namespace and is
back in its own afterwards, also when the work fails or the namespace does not exist."""

from __future__ import annotations

import os
import socket

import pytest

from dvr_agent.drivers.netns_thread import THREAD_NETNS, netns_path, run_in_netns
from tests.functional import netlink_fixtures

new_namespace = netlink_fixtures.new_namespace


def _here() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat(THREAD_NETNS).st_ino


def test_the_work_runs_inside_and_the_thread_comes_back(new_namespace):
    ns = new_namespace()
    home = _here()
    inside = run_in_netns(ns, _here)
    assert inside == os.stat(netns_path(ns)).st_ino != home
    assert _here() == home
    # a socket made inside, as netlink_socket.route_socket makes them
    sock = run_in_netns(ns, socket.socket, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    sock.close()
    assert _here() == home


def test_an_error_of_the_work_comes_out_and_the_thread_is_back(new_namespace):
    ns = new_namespace()
    home = _here()

    def broken():
        raise OSError("refused inside")

    with pytest.raises(OSError, match="refused inside"):
        run_in_netns(ns, broken)
    assert _here() == home


def test_a_namespace_that_does_not_exist_is_never_entered():
    home = _here()
    with pytest.raises(FileNotFoundError):
        run_in_netns("qrouter-00000000-0000-4000-8000-000000000000", _here)
    assert _here() == home


def test_nested_calls_come_back_one_level_at_a_time(new_namespace):
    outer, inner = new_namespace(), new_namespace()
    home = _here()

    def visit_inner() -> tuple[int, int]:
        return run_in_netns(inner, _here), _here()

    in_inner, back_in_outer = run_in_netns(outer, visit_inner)
    assert in_inner == os.stat(netns_path(inner)).st_ino
    assert back_in_outer == os.stat(netns_path(outer)).st_ino
    assert _here() == home


def test_a_namespace_created_from_this_thread_leaves_the_thread_at_home(new_namespace):
    home = _here()
    ns = new_namespace()  # Namespaces.create: unshare, bind mount, setns back
    assert _here() == home
    assert os.stat(netns_path(ns)).st_ino != home
