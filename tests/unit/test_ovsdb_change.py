"""What Ovsdb.apply accepts: every bad value is refused before anything is sent."""

import re

import pytest

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.drivers.ovsdb import Ovsdb
from dvr_agent.drivers.ovsdb_txn import Change
from dvr_agent.state import Bridge, OvsPort, VifTag


def _change(**parts):
    empty = dict(add_bridges=(), del_bridges=(), add_ports=(), update_ports=(), del_ports=(),
                 vif_tags=())
    return Change.validated(**{**empty, **parts})


@pytest.mark.parametrize("parts, named", [
    ({"add_ports": [OvsPort("br-int", "qr-1234567890abc")]}, "qr-1234567890abc"),  # 16 chars
    ({"add_ports": [OvsPort("br-int", "qr-1", tag=5000)]}, "5000"),
    ({"add_ports": [OvsPort("br-int", "qr-1", tag=0)]}, "qr-1"),
    ({"update_ports": [OvsPort("br-int", "qr-1", ofport_request=0)]}, "ofport_request"),
    ({"add_ports": [OvsPort("br-int", "qr-1", type="dpdk")]}, "dpdk"),
    ({"add_ports": [OvsPort("br-int", "vx", "vxlan", options=(("dst_port", 4789),))]},
     "options"),
    ({"add_ports": [OvsPort("br int", "qr-1")]}, "br int"),
    ({"add_bridges": [Bridge("br-int", "netdev", fail_mode="closed")]}, "closed"),
    ({"del_bridges": ["br/x"]}, "br/x"),
    ({"vif_tags": [VifTag("tap1", 4095, "net")]}, "4095"),
    ({"del_ports": ["a" * 16]}, "a" * 16),
    ({"add_ports": [OvsPort("br-int", "p")], "del_ports": ["p"]}, "twice"),
])
def test_bad_input_is_refused_with_an_error_naming_it(parts, named):
    with pytest.raises(InvalidInput) as error:
        _change(**parts)
    assert named in str(error.value)


def test_a_good_change_summarises_itself_for_logs_and_errors():
    change = _change(add_ports=[OvsPort("br-int", f"p{i}") for i in range(5)],
                     vif_tags=[VifTag("tap1", 3, "net")])
    assert str(change) == "add port p0, p1, p2, ... (5); tag VIF tap1"
    assert change.port_names == frozenset(f"p{i}" for i in range(5))
    assert not change.empty and _change().empty


def test_an_unreachable_server_is_a_driver_error_naming_it():
    with pytest.raises(DriverError, match=re.escape("unix:/nonexistent/db.sock")):
        Ovsdb("unix:/nonexistent/db.sock", timeout=2).start()
