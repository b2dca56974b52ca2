"""Compile time at the design scale: 1,000 routers x 2 subnets x 20 ports, 200 FIPs.

Prints figures; asserts nothing (timings on a shared 2-core machine are noise for tests).
Run: .venv/bin/python benchmarks/compile_bench.py
"""

from __future__ import annotations

import ipaddress
import statistics
import time

from dvr_agent import state
from dvr_agent.compiler import compile_host, compile_key
from dvr_agent.facts import AgentConfig, Facts
from dvr_agent.models import ArpEntry, FixedIp, HostMac, Port, Router, Subnet
from dvr_agent.models.routers import FloatingIp

HOST = "compute1"
EXT = "00000000-0000-4000-8000-00000000e000"


def _id(kind: int, n: int) -> str:
    return f"00000000-0000-4000-{kind:04x}-{n:012x}"


def _mac(kind: int, n: int) -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in ((kind << 20) | n).to_bytes(3, "big"))


def build(routers: int = 1000, subnets: int = 2, ports: int = 20, fips: int = 200) -> Facts:
    facts = Facts(AgentConfig(host=HOST, local_ip=ipaddress.IPv4Address("192.0.2.11")))
    facts.set_dvr_macs([HostMac(host=HOST, mac="fa:16:3f:b2:34:82"),
                        HostMac(host="network", mac="fa:16:3f:12:a3:38")])
    ext_subnet = Subnet(id=_id(9, 0), cidr=ipaddress.ip_network("198.18.0.0/15"),
                        gateway_ip=ipaddress.ip_address("198.18.0.1"))
    fg = Port(id=_id(8, 0), network_id=EXT, mac=_mac(8, 0), subnets=(ext_subnet,),
              fixed_ips=(FixedIp(subnet_id=ext_subnet.id,
                                 ip=ipaddress.ip_address("198.18.0.2"), prefixlen=15),))
    facts.set_fip_gateway_port(EXT, fg)
    all_routers, arp = [], {}
    for r in range(routers):
        interfaces = []
        for s in range(subnets):
            n = r * subnets + s
            cidr = ipaddress.ip_network(f"10.{n // 256}.{n % 256}.0/24")
            sub = Subnet(id=_id(2, n), cidr=cidr, gateway_ip=cidr[1])
            interfaces.append(Port(id=_id(3, n), network_id=_id(1, n), mac=_mac(3, n),
                                   device_owner="network:router_interface_distributed",
                                   fixed_ips=(FixedIp(subnet_id=sub.id, ip=cidr[1],
                                                      prefixlen=24),), subnets=(sub,)))
            arp[sub.id] = [Port(id=_id(4, n * ports + p), network_id=_id(1, n),
                                mac=_mac(4, n * ports + p), device_owner="compute:nova",
                                fixed_ips=(FixedIp(subnet_id=sub.id, ip=cidr[10 + p]),))
                           for p in range(ports)]
        gw = Port(id=_id(5, r), network_id=EXT, mac=_mac(5, r), subnets=(ext_subnet,),
                  fixed_ips=(FixedIp(subnet_id=ext_subnet.id,
                                     ip=ext_subnet.cidr[1000 + r], prefixlen=15),))
        router_fips = ()
        if r < fips:
            router_fips = (FloatingIp(id=_id(6, r), floating_ip=ext_subnet.cidr[5000 + r],
                                      fixed_ip=interfaces[0].fixed_ips[0].ip + 9,
                                      floating_network_id=EXT, router_id=_id(7, r),
                                      port_id=_id(4, r), host=HOST),)
        all_routers.append(Router(id=_id(7, r), interfaces=tuple(interfaces), gw_port=gw,
                                  gw_port_host="network", floating_ips=router_fips))
    started = time.perf_counter()
    facts.set_routers(all_routers)
    for subnet_id, subnet_ports in arp.items():
        facts.set_subnet_ports(subnet_id, subnet_ports)
    print(f"facts: full sync + {len(arp)} ARP tables in {time.perf_counter() - started:.3f} s")
    return facts


def main() -> None:
    facts = build()
    started = time.perf_counter()
    host = compile_host(facts)
    elapsed = time.perf_counter() - started
    neighbours = sum(len(ns.neighbours) for ns in host.namespaces().values())
    print(f"compile_host: {len(host.parts)} keys, {neighbours} permanent neighbours, "
          f"{len(host.flows())} flows, {len(host.namespaces())} namespaces in {elapsed:.3f} s")
    times = []
    for key in sorted(k.key for k in host.parts):
        t0 = time.perf_counter()
        compile_key(facts, key)
        times.append(time.perf_counter() - t0)
    times.sort()
    p50 = statistics.median(times) * 1e3
    p99 = times[int(len(times) * 0.99)] * 1e3
    print(f"compile_key over {len(times)} keys: p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
          f"max {times[-1] * 1e3:.3f} ms")
    router = next(iter(facts.routers.values()))
    subnet = router.interfaces[0].fixed_ips[0].subnet_id
    entry = ArpEntry(router_id=router.id, subnet_id=subnet,
                     ip=router.interfaces[0].subnets[0].cidr[200], mac="fa:16:3e:ff:ff:01")
    t0 = time.perf_counter()
    keys = facts.add_arp_entry(entry)
    states = [compile_key(facts, k) for k in keys]
    event = time.perf_counter() - t0
    print(f"one add_arp_entry: {len(keys)} key(s) affected ({sorted(keys)[0][:20]}...), "
          f"facts + recompile in {event * 1e3:.3f} ms")
    assert keys == {state.router_key(router.id)} and states


if __name__ == "__main__":
    main()
