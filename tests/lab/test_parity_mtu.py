"""MTU with real packets (issue 10, item 6): router ports take their network's MTU.

Tenant networks carry at most 1450 bytes (the lab's underlay is 1500, VXLAN takes 50);
a network may ask for less (1400 here). A ping with Don't Fragment at the largest size
that fits crosses hosts east-west and through the floating IP and SNAT; one byte more
gets "fragmentation needed" back to the sender, from the router that cannot forward it:
- into the 1400 network, the sending VM hears it from its gateway;
- to a floating IP from the upstream (1500), the upstream hears it (for the floating IP);
- through SNAT, the upstream's too-big reply to a VM gets it back from the router's
  gateway address (the upstream's kernel then knows the path MTU: 1450).
"""

from __future__ import annotations

import subprocess
import sys

from dvr_agent.lab import layout, probes
from dvr_agent.lab.vms import command
from tests.lab.world import wait_for

FITS_1450, FITS_1400 = 1450 - 28, 1400 - 28  # ICMP payload: less IPv4 (20) and ICMP (8)
TOO_BIG = "Frag needed and DF set"

# The upstream answers a VM's datagram with DF set at 1450 bytes of IP, then at 1451:
# the first must arrive, the second must come back as "fragmentation needed" (the
# kernel then refuses to send it again: EMSGSIZE, with the path MTU it learned).
UPSTREAM_UDP = """
import socket, sys, time
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14   # <linux/in.h>
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
s.bind((sys.argv[1], 9100)); s.settimeout(30)
_, peer = s.recvfrom(100); s.connect(peer)
s.send(b"x" * (1450 - 28))
s.send(b"y" * (1451 - 28))
time.sleep(1)
try:
    s.send(b"y" * (1451 - 28)); print("sent again")
except OSError as e:
    print("refused", e.errno, s.getsockopt(socket.IPPROTO_IP, IP_MTU))
"""
VM_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
sizes = []
for _ in range(50):
    s.sendto(b"hello", (sys.argv[1], 9100))
    try:
        while True:
            sizes.append(len(s.recv(2000)))
    except socket.timeout:
        if sizes:
            break
print(sorted(set(sizes)))
"""


def test_largest_df_packet_crosses_and_one_byte_more_gets_fragmentation_needed(lab):
    net1, sub1 = lab.network("10.67.1.0/24")
    small = lab.ctl("network", "create", lab.name("net"), "--mtu", "1400")
    sub2 = lab.ctl("subnet", "create", small["id"], "10.67.2.0/24", "--name",
                   lab.name("sub"))
    net3, sub3 = lab.network("10.67.3.0/24")
    router = lab.router(sub1, sub2, sub3, gateway=True)
    vm1 = lab.boot("compute1", net1)
    vm2, vm3 = lab.boot("compute2", small), lab.boot("compute2", net3)
    assert (net1["mtu"], small["mtu"], vm1["mtu"], vm2["mtu"]) == (1450, 1400, 1450, 1400)
    in_vm1 = command(vm1["name"], [])
    wait_for("vm1 reaching vm3 across hosts", lambda: lab.ping(vm1, vm3["ip"]))

    # east-west, 1450 all the way: the largest fits through VXLAN on a 1500 underlay
    assert " 0% packet loss" in lab.ping_df(in_vm1, vm3["ip"], FITS_1450)
    # east-west into the 1400 network: the router's qr- there is 1400
    wait_for("vm1 reaching vm2", lambda: lab.ping(vm1, vm2["ip"]))
    assert " 0% packet loss" in lab.ping_df(in_vm1, vm2["ip"], FITS_1400)
    out = lab.ping_df(in_vm1, vm2["ip"], FITS_1400 + 1)
    assert f"From {sub1['gateway_ip']} " in out and f"{TOO_BIG} (mtu = 1400)" in out, out

    # through the floating IP, from the upstream (1500) to vm1 (1450)
    fip = lab.ctl("floatingip", "create", "public", "--port", vm1["port_id"])
    address = fip["floating_ip_address"]
    wait_for("the upstream reaching the floating IP",
             lambda: probes.ping_ok(probes.UPSTREAM, address))
    assert " 0% packet loss" in lab.ping_df(probes.UPSTREAM, address, FITS_1450)
    out = lab.ping_df(probes.UPSTREAM, address, FITS_1450 + 1)
    assert f"From {address} " in out and f"{TOO_BIG} (mtu = 1450)" in out, out

    # through SNAT: vm3 (no floating IP) out at its largest, and a too-big reply back
    assert " 0% packet loss" in lab.ping_df(command(vm3["name"], []), str(layout.UPSTREAM_IP),
                                            FITS_1450)
    upstream = subprocess.Popen([*probes.UPSTREAM, sys.executable, "-c", UPSTREAM_UDP,
                                 str(layout.UPSTREAM_IP)], stdout=subprocess.PIPE, text=True)
    try:
        got = subprocess.run(command(vm3["name"], [sys.executable, "-c", VM_UDP,
                                                   str(layout.UPSTREAM_IP)]),
                             capture_output=True, text=True, timeout=120).stdout
        told, _ = upstream.communicate(timeout=60)
    finally:
        if upstream.poll() is None:
            upstream.kill()
            upstream.wait()
    assert got.strip() == f"[{FITS_1450}]", got
    assert told.strip() == "refused 90 1450", told  # EMSGSIZE, path MTU 1450

    lab.ctl("floatingip", "delete", fip["id"])
    for vm in (vm1, vm2, vm3):
        lab.delete_vm(vm)
    lab.delete_router(router)
