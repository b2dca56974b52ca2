"""The configuration values the domain needs, as one frozen value (no global cfg.CONF here)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from dvr_agent.server.db.models import utcnow

VXLAN_OVERHEAD = 50  # outer IPv4 + UDP + VXLAN + inner Ethernet, what Neutron subtracts


@dataclass(frozen=True, kw_only=True)
class Settings:
    base_mac: str = "fa:16:3e:00:00:00"
    dvr_base_mac: str = "fa:16:3f:00:00:00"
    dvr_mac_retries: int = 20
    agent_down_time: int = 75
    vni_ranges: tuple[tuple[int, int], ...] = ((1, 65535),)
    default_physnet: str = "physnet1"
    global_physnet_mtu: int = 1500
    clock: object = field(default=utcnow, compare=False)

    def now(self) -> datetime.datetime:
        return self.clock()  # type: ignore[operator]

    @property
    def vxlan_mtu(self) -> int:
        return self.global_physnet_mtu - VXLAN_OVERHEAD


def parse_vni_ranges(ranges: list[str]) -> tuple[tuple[int, int], ...]:
    """``["1:1000", "5000:6000"]`` -> ((1, 1000), (5000, 6000)); ValueError names a bad one."""
    parsed = []
    for item in ranges:
        try:
            low, high = (int(x) for x in item.split(":"))
        except ValueError:
            raise ValueError(f"vni_ranges entry {item!r} is not MIN:MAX") from None
        if not 1 <= low <= high <= 2**24 - 1:
            raise ValueError(f"vni_ranges entry {item!r} is outside 1:16777215 or reversed")
        parsed.append((low, high))
    return tuple(parsed)
