"""The agent's own settings, as the facts and the compiler need them (no oslo here)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dvr_agent import names
from dvr_agent.rpc import protocol

PHYS_PATCH_PREFIX = "phy-"  # int-<br> on br-int, phy-<br> on <br>: Neutron's names
INT_PATCH_PREFIX = "int-"
AGENT_MODES = frozenset({protocol.AGENT_MODE_DVR, protocol.AGENT_MODE_DVR_SNAT,
                         protocol.AGENT_MODE_DVR_NO_EXTERNAL})


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentConfig:
    """``bridge_mappings`` is a sorted tuple of (physnet, bridge), e.g. (("physnet1", "br-ex"),)."""

    host: str
    agent_mode: str = protocol.AGENT_MODE_DVR
    local_ip: ipaddress.IPv4Address | None = None
    integration_bridge: str = "br-int"
    tunnel_bridge: str = "br-tun"
    bridge_mappings: tuple[tuple[str, str], ...] = ()
    datapath_type: str = "system"
    ovs_use_veth: bool = False
    vxlan_udp_port: int = 4789

    def __post_init__(self) -> None:
        if self.agent_mode not in AGENT_MODES:
            raise ValueError(f"agent_mode {self.agent_mode!r} is not one of {sorted(AGENT_MODES)}")
        if not self.host:
            raise ValueError("host must not be empty")
        bridges = [self.integration_bridge, self.tunnel_bridge] + [
            b for _, b in self.bridge_mappings]
        for bridge in bridges:
            if not names.valid_device_name(bridge):
                raise ValueError(f"bridge name {bridge!r} is not a device name")
        if len(set(bridges)) != len(bridges):
            raise ValueError(f"bridges must be distinct: {bridges}")
        for _, bridge in self.bridge_mappings:
            if len(PHYS_PATCH_PREFIX + bridge) > names.DEVICE_NAME_MAX:
                raise ValueError(f"bridge {bridge!r} too long for its patch port "
                                 f"{PHYS_PATCH_PREFIX + bridge!r}")
        physnets = [p for p, _ in self.bridge_mappings]
        if len(set(physnets)) != len(physnets):
            raise ValueError(f"a physnet is mapped twice: {physnets}")
        object.__setattr__(self, "bridge_mappings", tuple(sorted(self.bridge_mappings)))

    @property
    def snat_capable(self) -> bool:
        return self.agent_mode == protocol.AGENT_MODE_DVR_SNAT

    @property
    def distributes_fips(self) -> bool:
        return self.agent_mode != protocol.AGENT_MODE_DVR_NO_EXTERNAL

    def bridge_for(self, physnet: str | None) -> str | None:
        return dict(self.bridge_mappings).get(physnet) if physnet else None
