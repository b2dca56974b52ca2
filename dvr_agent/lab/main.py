"""``dvr-lab``: several DVR hosts on one machine, for the demo, the tests and for playing.

    dvr-lab up [--hosts network:dvr_snat,compute1:dvr,compute2:dvr] [--backend containers]
    dvr-lab demo [--backend containers] | down | status [--json] | logs HOST
    dvr-lab exec HOST|upstream|controller -- CMD...
    dvr-lab dvrctl ARGS...
    dvr-lab vm boot NAME --host HOST --network NET [--ip IP]
    dvr-lab vm delete NAME | vm exec NAME -- CMD... | vm migrate NAME --host HOST
    dvr-lab agent {stop,start,restart,kill} HOST [--mode MODE]
    dvr-lab ovs restart HOST | ovsdb restart HOST
    dvr-lab broker {stop,start} | server restart
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys

from dvr_agent.lab import layout
from dvr_agent.lab.procs import LabError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dvr-lab", description="a multi-host DVR lab on one "
                                "machine (namespaces, Open vSwitch, RabbitMQ, dvr-server)")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab (idempotent)")
    up.add_argument("--hosts", default=layout.DEFAULT_HOSTS,
                    help=f"NAME:MODE,... (default {layout.DEFAULT_HOSTS})")
    up.add_argument("--backend", choices=layout.BACKENDS,
                    help="hosts as namespaces or as systemd containers from the image of "
                         "`make image` (default: the lab's if one is up, else "
                         "$DVR_LAB_BACKEND, else namespaces)")
    sub.add_parser("down", help="stop and remove everything the lab made")
    status = sub.add_parser("status", help="what runs")
    status.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="up, then the seed's topology with real traffic")
    demo.add_argument("--down", action="store_true",
                      help="take the lab down at the end (by default it stays up to explore)")
    demo.add_argument("--backend", choices=layout.BACKENDS, help="as for `up`")
    logs = sub.add_parser("logs", help="a host's agent log (or `controller` for the server)")
    logs.add_argument("host")
    ex = sub.add_parser("exec", help="run a command on a host, upstream or the controller")
    ex.add_argument("target")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    ctl = sub.add_parser("dvrctl", help="dvrctl against the lab's server")
    ctl.add_argument("argv", nargs=argparse.REMAINDER)
    vm = sub.add_parser("vm", help="VMs").add_subparsers(dest="vm_command", required=True)
    boot = vm.add_parser("boot", help="create a port and plug a VM into the host")
    boot.add_argument("name")
    boot.add_argument("--host", required=True)
    boot.add_argument("--network", required=True)
    boot.add_argument("--ip")
    vm.add_parser("delete").add_argument("name")
    migrate = vm.add_parser("migrate", help="live-migrate a VM to another host")
    migrate.add_argument("name")
    migrate.add_argument("--host", required=True)
    vm_exec = vm.add_parser("exec")
    vm_exec.add_argument("name")
    vm_exec.add_argument("argv", nargs=argparse.REMAINDER)
    agent = sub.add_parser("agent", help="stop/start/restart/kill a host's agent")
    agent.add_argument("action", choices=["stop", "start", "restart", "kill"])
    agent.add_argument("host")
    agent.add_argument("--mode", choices=layout.MODES,
                       help="start it in this agent_mode (e.g. dvr_no_external)")
    for name in ("ovs", "ovsdb"):
        daemon = sub.add_parser(name, help=f"restart a host's "
                                f"{'ovs-vswitchd' if name == 'ovs' else 'ovsdb-server'}")
        daemon.add_argument("action", choices=["restart"])
        daemon.add_argument("host")
    broker = sub.add_parser("broker", help="stop/start RabbitMQ")
    broker.add_argument("action", choices=["stop", "start"])
    server = sub.add_parser("server", help="restart dvr-server")
    server.add_argument("action", choices=["restart"])
    return p


def _command(argv: list[str]) -> list[str]:
    argv = argv[1:] if argv[:1] == ["--"] else argv
    if not argv:
        raise LabError("no command given (after --)")
    return argv


@contextlib.contextmanager
def _locked():
    """One changing dvr-lab command at a time (they share /run/dvr-lab/lab.json): a lock
    on the directory itself, so that `down` can remove it while holding the lock."""
    os.makedirs(layout.BASE_DIR, exist_ok=True)
    fd = os.open(layout.BASE_DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run(args: argparse.Namespace) -> int:
    from dvr_agent.lab.lab import Lab, backend_named  # heavy imports once arguments are fine

    cmd = args.command
    if cmd == "exec":
        return Lab().exec(args.target, _command(args.argv))
    if cmd == "dvrctl":
        from dvr_agent.lab import services

        return services.dvrctl(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)\
            .returncode
    if cmd == "logs":
        sys.stdout.write(Lab().logs(args.host))
        return 0
    if cmd == "status":
        status = Lab().status()
        if args.json:
            print(json.dumps(status, indent=1, sort_keys=True))
        else:
            _print_status(status)
        return 0
    if cmd == "vm" and args.vm_command == "exec":
        return Lab().vm_exec(args.name, _command(args.argv)).returncode
    with _locked():
        backend = getattr(args, "backend", None)
        lab = Lab(backend=backend_named(backend) if backend else None)
        if cmd == "up":
            lab.up(args.hosts)
        elif cmd == "down":
            lab.down()
        elif cmd == "demo":
            from dvr_agent.lab.demo import run_demo

            return run_demo(lab, down=args.down)
        elif cmd == "vm" and args.vm_command == "boot":
            vm = lab.vm_boot(args.name, args.host, args.network, args.ip)
            print(f"VM {vm['name']} on {vm['host']}: {vm['ip']} ({vm['mac']}), port "
                  f"{vm['port_id']}")
        elif cmd == "vm" and args.vm_command == "delete":
            lab.vm_delete(args.name)
        elif cmd == "vm" and args.vm_command == "migrate":
            vm = lab.vm_migrate(args.name, args.host)
            print(f"VM {vm['name']} now on {vm['host']}")
        elif cmd == "agent":
            lab.agent(args.action, args.host, args.mode)
        elif cmd == "ovs":
            lab.ovs(lab.host(args.host)).restart_vswitchd()
        elif cmd == "ovsdb":
            lab.ovs(lab.host(args.host)).restart_ovsdb()
        elif cmd == "broker":
            lab.broker(args.action)
        elif cmd == "server":
            lab.server_restart()
    return 0


def _print_status(status: dict) -> None:
    if not status["up"]:
        print("the lab is down")
        return
    def mark(d):
        return f"running (pid {d['pid']})" if d["running"] else "NOT RUNNING"

    print(f"broker: {mark(status['broker'])}    dvr-server: {mark(status['server'])}")
    for host in status["hosts"]:
        print(f"{host['name']:<10} {host['mode']:<9} {host['underlay_ip']:<12} "
              f"agent {mark(host['agent'])}, ovs pids {host['ovs']}")
    for name, vm in sorted(status["vms"].items()):
        print(f"vm {name:<8} on {vm['host']:<10} {vm['ip']:<15} {vm['mac']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dvrctl"]:  # everything after it is dvrctl's, options included
        argv = ["dvrctl", "--", *argv[1:]]
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print("dvr-lab: needs root (namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    try:
        return run(args)
    except LabError as exc:
        print(f"dvr-lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dvr-lab: interrupted; `dvr-lab down` cleans up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
