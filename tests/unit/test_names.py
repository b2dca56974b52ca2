import pytest

from dvr_agent import names

PORT = "76e3e74c-9eb2-4e24-9bfb-a2c5c55422f0"
ROUTER = "e87505b3-d455-49fc-bf31-5a2c51203085"


def test_port_devices_keep_eleven_characters_of_the_port_id():
    assert names.qr_device_name(PORT) == "qr-76e3e74c-9e"
    assert names.sg_device_name(PORT) == "sg-76e3e74c-9e"
    assert names.qg_device_name(PORT) == "qg-76e3e74c-9e"
    assert names.fg_device_name(PORT) == "fg-76e3e74c-9e"


def test_router_veth_ends_keep_ten_characters_of_the_router_id():
    assert names.rfp_device_name(ROUTER) == "rfp-e87505b3-d"
    assert names.fpr_device_name(ROUTER) == "fpr-e87505b3-d"


def test_every_device_name_fits_in_fourteen_characters():
    for make in (names.qr_device_name, names.rfp_device_name, names.fg_device_name):
        assert len(make(PORT)) == 14


def test_veth_host_end_replaces_the_prefix_with_tap():
    assert names.veth_host_name("qr-76e3e74c-9e") == "tap76e3e74c-9e"
    with pytest.raises(ValueError, match="not a namespace device"):
        names.veth_host_name("eth0")


def test_namespaces_carry_the_whole_uuid():
    assert names.qrouter_ns_name(ROUTER) == f"qrouter-{ROUTER}"
    assert names.owned_namespace_id(f"snat-{ROUTER}") == ("snat-", ROUTER)


@pytest.mark.parametrize("name", ["qrouter-notauuid", "myapp-1", f"qrouterx-{ROUTER}",
                                  f"qrouter-{ROUTER.upper()}", f"fip-{ROUTER}-x", ""])
def test_names_that_are_not_ours_are_recognised(name):
    assert not names.is_owned_namespace(name)


@pytest.mark.parametrize("name,ok", [("qr-76e3e74c-9e", True), ("a" * 15, True),
                                     ("a" * 16, False), ("", False), ("a/b", False),
                                     ("a b", False), ("..", False)])
def test_kernel_device_name_rules(name, ok):
    assert names.valid_device_name(name) is ok
