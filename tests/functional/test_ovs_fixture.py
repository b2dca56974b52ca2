"""The private Open vSwitch fixture itself: where it runs, what it leaves behind."""

import os

from tests.fixtures import guard
from tests.fixtures.ovs import private_ovs


def test_daemons_run_in_the_session_namespace_and_answer_their_tools(ovs):
    me = os.stat("/proc/self/ns/net").st_ino
    for pid in (ovs.ovsdb_pid, ovs.vswitchd_pid):
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == me
    assert "ovs-vswitchd (Open vSwitch)" in ovs.appctl("version")
    ovs.vsctl("add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev")
    assert os.path.exists(os.path.join(ovs.rundir, "br-x.mgmt"))
    assert "br-x" in ovs.ofctl("show", "br-x")


def test_a_stopped_instance_leaves_no_process_and_no_tap():
    before = guard.snapshot()
    with private_ovs() as ovs:
        ovs.vsctl("add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev",
                  "--", "add-port", "br-x", "qr-x", "--", "set", "Interface", "qr-x",
                  "type=internal")
        running = guard.snapshot().leaks_since(before)
        assert {"ovs-netdev", "br-x", "qr-x"} <= running.links
        assert {ovs.ovsdb_pid, ovs.vswitchd_pid} <= running.processes
    assert not guard.snapshot().leaks_since(before)


def test_restarting_vswitchd_keeps_the_database_and_drops_the_flows(ovs):
    ovs.vsctl("add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev",
              "fail_mode=secure")
    ovs.ofctl("add-flow", "br-x", "priority=5,actions=drop")
    old_pid = ovs.vswitchd_pid
    ovs.restart_vswitchd()
    assert ovs.vswitchd_pid != old_pid
    assert ovs.vsctl("list-br").split() == ["br-x"]
    assert "priority=5" not in ovs.ofctl("dump-flows", "br-x")
