"""Parsers for one field each: take what neutron-server sends, return a canonical value.

Each raises PayloadError naming the reason; ``field`` and ``items`` add the path. They
accept exactly what a real server sends after JSON (string keys, MACs in any case with
``:`` or ``-``, ``null`` for absent optionals) and nothing looser: a bool is not an int,
a string is not a list.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dvr_agent.models.errors import PayloadError

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")
_HOST_MAX = 255  # neutron's host columns are String(255)
_TEXT_MAX = 255
_MISSING: Any = object()


def mapping(value: object) -> Mapping[str, Any]:
    if isinstance(value, dict):  # what JSON gives; the ABC check costs 10x more
        return value
    if not isinstance(value, Mapping):
        raise PayloadError("", value, "expected an object")
    return value


def field(d: object, key: str, parse: Callable[[Any], T], default: Any = _MISSING) -> T:
    """``parse(d[key])`` with the path of ``key``; a missing key is an error unless defaulted.

    A ``null`` counts as missing only where a default is given (neutron writes ``null`` for
    unset optionals such as ``dest_host``).
    """
    value = mapping(d).get(key, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise PayloadError(key, None, "missing")
        return default
    # not ``with at(key)``: a try costs nothing until something is raised, and an ARP
    # table of 12,000 ports is 170,000 fields (with it, parsing a port took 16 us; 13 now)
    try:
        return parse(value)
    except PayloadError as error:
        raise error.within(key) from None


def items(parse: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    """A list parser: each element through ``parse``, errors carry ``[index]``."""
    def parse_list(value: object) -> tuple[T, ...]:
        if not isinstance(value, list | tuple):
            raise PayloadError("", value, "expected a list")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(parse(element))
            except PayloadError as error:
                raise error.within(i) from None
        return tuple(out)
    return parse_list


def text(value: object) -> str:
    if not isinstance(value, str):
        raise PayloadError("", value, "expected a string")
    if len(value) > _TEXT_MAX:
        raise PayloadError("", value, f"longer than {_TEXT_MAX} characters")
    return value


def host(value: object) -> str:
    """A host name as neutron stores it in bindings (non-empty, at most 255 characters)."""
    if not isinstance(value, str) or not value or len(value) > _HOST_MAX:
        raise PayloadError("", value, "expected a host name")
    return value


def optional_host(value: object) -> str | None:
    """``binding:host_id`` style: ``""`` means unbound."""
    if value == "":
        return None
    return host(value)


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise PayloadError("", value, "expected true or false")
    return value


def integer(lo: int, hi: int) -> Callable[[Any], int]:
    def parse_int(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PayloadError("", value, "expected an integer")
        if not lo <= value <= hi:
            raise PayloadError("", value, f"out of range {lo}..{hi}")
        return value
    return parse_int


def uuid(value: object) -> str:
    """A UUID in canonical dashed form, returned lower-case (device names derive from it)."""
    if not isinstance(value, str) or len(value) != 36 or not _UUID.match(value):
        raise PayloadError("", value, "not a UUID")
    return value.lower()


def mac(value: object) -> str:
    """A MAC as ``fa:16:3e:..`` or ``FA-16-3E-..`` -> ``fa:16:3e:..`` (lower case, colons)."""
    if not isinstance(value, str) or len(value) != 17 or not _MAC.match(value):
        raise PayloadError("", value, "not a MAC address")
    return value.lower().replace("-", ":")


def unicast_mac(value: object) -> str:
    """A MAC a port can own: not multicast/broadcast, not all zeros."""
    canonical = mac(value)
    if int(canonical[:2], 16) & 1:
        raise PayloadError("", value, "multicast MAC where a unicast one is required")
    if canonical == "00:00:00:00:00:00":
        raise PayloadError("", value, "all-zero MAC where a port MAC is required")
    return canonical


def ip(value: object) -> IPAddress:
    if not isinstance(value, str) or len(value) > 45:
        raise PayloadError("", value, "not an IP address")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise PayloadError("", value, "not an IP address") from None


def ipv4(value: object) -> ipaddress.IPv4Address:
    address = ip(value)
    if not isinstance(address, ipaddress.IPv4Address):
        raise PayloadError("", value, "not an IPv4 address")
    return address


def cidr(value: object) -> IPNetwork:
    """A network in strict form (``10.0.0.0/24``; ``10.0.0.1/24`` is rejected)."""
    if not isinstance(value, str) or len(value) > 49:
        raise PayloadError("", value, "not a CIDR")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise PayloadError("", value, f"not a CIDR ({e})") from None


def address_or_cidr(value: object) -> IPNetwork:
    """An allowed-address-pair ``ip_address``: a host (``10.0.0.5``) or a network."""
    if not isinstance(value, str) or len(value) > 49:
        raise PayloadError("", value, "not an IP address or CIDR")
    try:
        return ipaddress.ip_network(value, strict=False)  # neutron accepts host bits
    except ValueError as e:
        raise PayloadError("", value, f"not an IP address or CIDR ({e})") from None
