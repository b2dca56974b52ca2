"""How dvrctl prints: human tables by default, JSON (Neutron's field names) with --json.

The table printer is a few lines by hand rather than a dependency (prettytable, tabulate):
fixed-width columns of plain strings are all we need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# (column title, field) per resource: the columns a person scans in a list.
LIST_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "network": [("id", "id"), ("name", "name"), ("type", "provider:network_type"),
                ("segment", "provider:segmentation_id"),
                ("physnet", "provider:physical_network"), ("external", "router:external"),
                ("mtu", "mtu"), ("subnets", "subnets")],
    "subnet": [("id", "id"), ("name", "name"), ("network_id", "network_id"), ("cidr", "cidr"),
               ("gateway_ip", "gateway_ip")],
    "router": [("id", "id"), ("name", "name"), ("gateway", "external_gateway_info"),
               ("snat host", "gw_port_host"), ("hosts", "hosts")],
    "port": [("id", "id"), ("name", "name"), ("network_id", "network_id"),
             ("mac_address", "mac_address"), ("fixed_ips", "fixed_ips"),
             ("host", "binding:host_id"), ("device_owner", "device_owner"),
             ("status", "status")],
    "floatingip": [("id", "id"), ("floating_ip_address", "floating_ip_address"),
                   ("fixed_ip_address", "fixed_ip_address"), ("port_id", "port_id"),
                   ("router_id", "router_id"), ("host", "host"), ("status", "status")],
    "host": [("host", "host"), ("agent modes", "agent_modes"), ("alive", "alive"),
             ("dvr mac", "mac_address")],
    "agent": [("host", "host"), ("agent_type", "agent_type"), ("alive", "alive"),
              ("heartbeat", "heartbeat_timestamp")],
}


def cell(value: Any) -> str:
    """One value as a person reads it: lists joined, gateways by network, None blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if "network_id" in value and "external_fixed_ips" in value:
            ips = ",".join(ip["ip_address"] for ip in value["external_fixed_ips"])
            return f"{value['network_id']} ({ips})"
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return ", ".join(cell(v["ip_address"] if isinstance(v, dict) and "ip_address" in v
                              else v) for v in value)
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line, fmt(headers), line, *(fmt(r) for r in rows), line])


def render(resource: str, result: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(result, indent=2, sort_keys=True)
    if isinstance(result, list):
        columns = LIST_COLUMNS[resource]
        return table([title for title, _ in columns],
                     [[cell(row.get(field)) for _, field in columns] for row in result])
    if isinstance(result, dict):
        return table(["Field", "Value"], [[k, cell(v)] for k, v in sorted(result.items())])
    return cell(result)
