"""Named network namespaces on the real kernel: iproute2-compatible, idempotent, ours only."""

from __future__ import annotations

import os
import threading

import pytest
from pyroute2 import netns

from dvr_agent import names
from dvr_agent.drivers.errors import InvalidInput, NotOurs
from dvr_agent.drivers.namespaces import Namespaces, is_namespace_mount
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.netns_thread import netns_path
from tests.functional.netlink_fixtures import ip


def _qrouter() -> str:
    return names.qrouter_ns_name(names.new_uuid())


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def test_created_namespace_is_seen_by_ip_netns_and_deleted():
    namespaces, name = Namespaces(), _qrouter()
    try:
        assert namespaces.create(name) is True
        assert name in namespaces.list()
        assert namespaces.exists(name)
        assert name in ip("netns", "list")
        # a namespace of its own, not ours bound under a new name
        assert _netns_inode(netns_path(name)) != _netns_inode("/proc/self/ns/net")
        assert "lo" in ip("-n", name, "link", "show")
    finally:
        assert namespaces.delete(name) is True
    assert name not in namespaces.list()
    assert not namespaces.exists(name)
    assert name not in ip("netns", "list")


def test_create_and_delete_twice_change_nothing_the_second_time():
    namespaces, name = Namespaces(), _qrouter()
    try:
        assert namespaces.create(name) is True
        inode = _netns_inode(netns_path(name))
        assert namespaces.create(name) is False
        assert _netns_inode(netns_path(name)) == inode  # the same namespace, not a new one
    finally:
        assert namespaces.delete(name) is True
    assert namespaces.delete(name) is False
    assert name not in namespaces.list()


def test_namespace_that_is_not_ours_is_refused_and_left_alone():
    namespaces = Namespaces()
    netns.create("myapp-1")  # an operator's namespace
    try:
        before = namespaces.list()
        assert "myapp-1" in before  # listed: list() reports every namespace
        with pytest.raises(NotOurs, match="myapp-1"):
            namespaces.delete("myapp-1")
        with pytest.raises(NotOurs, match="qrouter-notauuid"):
            namespaces.create("qrouter-notauuid")
        assert namespaces.list() == before
        assert is_namespace_mount(netns_path("myapp-1"))
        assert not os.path.lexists(netns_path("qrouter-notauuid"))
    finally:
        netns.remove("myapp-1")


def test_explicit_predicate_decides_what_is_ours():
    namespaces = Namespaces(owned=lambda name: name.startswith("lab-"))
    try:
        assert namespaces.create("lab-host1") is True
        with pytest.raises(NotOurs):
            namespaces.create(_qrouter())
    finally:
        namespaces.delete("lab-host1")
    assert "lab-host1" not in namespaces.list()


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".", ".."])
def test_malformed_namespace_name_is_refused(bad):
    before = Namespaces().list()
    with pytest.raises(InvalidInput):
        Namespaces(owned=lambda name: True).create(bad)
    assert Namespaces().list() == before


def test_leftover_empty_file_from_a_crash_is_not_a_namespace_and_is_repaired():
    namespaces, name = Namespaces(), _qrouter()
    os.makedirs("/run/netns", exist_ok=True)
    path = netns_path(name)
    with open(path, "w"):
        pass  # what a crash between "create the mount point" and "mount" leaves
    try:
        assert not namespaces.exists(name)
        assert name not in namespaces.list()
        assert namespaces.create(name) is True
        assert namespaces.exists(name)
        with Netlink(name) as nl:  # a working namespace, not an empty file
            assert set(nl.links()) == {"lo"}
    finally:
        namespaces.delete(name)
    assert not os.path.lexists(path)


def test_leftover_empty_file_is_removed_by_delete_which_reports_no_namespace():
    namespaces, name = Namespaces(), _qrouter()
    os.makedirs("/run/netns", exist_ok=True)
    with open(netns_path(name), "w"):
        pass
    assert namespaces.delete(name) is False
    assert not os.path.lexists(netns_path(name))


def test_namespace_with_devices_is_deleted():
    namespaces, name = Namespaces(), _qrouter()
    namespaces.create(name)
    try:
        with Netlink(name) as nl:
            nl.veth_add("qr-a", "qr-b", name)
            nl.link_set("qr-a", up=True)
    finally:
        assert namespaces.delete(name) is True
    assert name not in namespaces.list()


def test_threads_creating_one_namespace_at_once_create_it_once():
    namespaces, name = Namespaces(), _qrouter()
    results: list[bool] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        results.append(namespaces.create(name))

    workers = [threading.Thread(target=create) for _ in range(8)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(results) == [False] * 7 + [True]
    finally:
        namespaces.delete(name)
    # exactly one mount was made: after one delete nothing is left mounted there
    assert not os.path.lexists(netns_path(name))
    with open("/proc/self/mountinfo") as mountinfo:
        assert name not in mountinfo.read()
