"""Names of the namespaces and devices the agent owns, exactly as Neutron derives them.

Device names are the prefix plus the start of a UUID, cut to 14 characters (Linux allows
15; Neutron keeps one spare): ``qr-`` + 11 characters of the port id, ``rfp-`` + 10 of
the router id. Namespace names carry the whole UUID. Matching Neutron's names means an
operator's tools and habits (``ip netns``, ``ovs-vsctl show``) read the same here.
"""

from __future__ import annotations

import re
import uuid

DEVICE_NAME_MAX = 14  # neutron_lib.constants.DEVICE_NAME_MAX_LEN
IFNAMSIZ_MAX = 15  # what the kernel accepts

QROUTER_NS_PREFIX = "qrouter-"
SNAT_NS_PREFIX = "snat-"
FIP_NS_PREFIX = "fip-"
OWNED_NS_PREFIXES = (QROUTER_NS_PREFIX, SNAT_NS_PREFIX, FIP_NS_PREFIX)

INTERNAL_DEV_PREFIX = "qr-"
SNAT_INT_DEV_PREFIX = "sg-"
EXTERNAL_DEV_PREFIX = "qg-"
FIP_EXT_DEV_PREFIX = "fg-"
ROUTER_2_FIP_DEV_PREFIX = "rfp-"
FIP_2_ROUTER_DEV_PREFIX = "fpr-"
VETH_HOST_PREFIX = "tap"  # host-side end of a veth-plugged port (ovs_use_veth)

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_uuid(value: str) -> bool:
    """True for a UUID in its canonical lower-case, dashed form (what Neutron sends)."""
    return bool(_UUID_RE.match(value))


def _device(prefix: str, ident: str) -> str:
    return (prefix + ident)[:DEVICE_NAME_MAX]


def qr_device_name(port_id: str) -> str:
    return _device(INTERNAL_DEV_PREFIX, port_id)


def sg_device_name(port_id: str) -> str:
    return _device(SNAT_INT_DEV_PREFIX, port_id)


def qg_device_name(port_id: str) -> str:
    return _device(EXTERNAL_DEV_PREFIX, port_id)


def fg_device_name(port_id: str) -> str:
    return _device(FIP_EXT_DEV_PREFIX, port_id)


def rfp_device_name(router_id: str) -> str:
    return _device(ROUTER_2_FIP_DEV_PREFIX, router_id)


def fpr_device_name(router_id: str) -> str:
    return _device(FIP_2_ROUTER_DEV_PREFIX, router_id)


def veth_host_name(device: str) -> str:
    """The host end of a veth-plugged namespace device: qr-1a2b3c4d-5e -> tap1a2b3c4d-5e."""
    _, sep, rest = device.partition("-")
    if not sep:
        raise ValueError(f"not a namespace device name: {device!r}")
    return _device(VETH_HOST_PREFIX, rest)


def qrouter_ns_name(router_id: str) -> str:
    return QROUTER_NS_PREFIX + router_id


def snat_ns_name(router_id: str) -> str:
    return SNAT_NS_PREFIX + router_id


def fip_ns_name(external_network_id: str) -> str:
    return FIP_NS_PREFIX + external_network_id


def owned_namespace_id(name: str) -> tuple[str, str] | None:
    """(prefix, uuid) if ``name`` is a namespace the agent owns, else None.

    Ours are exactly ``qrouter-``/``snat-``/``fip-`` followed by a UUID; a namespace such
    as ``qrouter-notauuid`` or ``myapp-1`` belongs to somebody else and is never touched.
    """
    for prefix in OWNED_NS_PREFIXES:
        if name.startswith(prefix) and is_uuid(name[len(prefix):]):
            return prefix, name[len(prefix):]
    return None


def is_owned_namespace(name: str) -> bool:
    return owned_namespace_id(name) is not None


def valid_device_name(name: str) -> bool:
    """What the kernel accepts as an interface name (IFNAMSIZ, no '/', ':' or space)."""
    return 0 < len(name) <= IFNAMSIZ_MAX and not any(c in name for c in "/: \t\n") \
        and name not in (".", "..")


def new_uuid() -> str:
    return str(uuid.uuid4())
