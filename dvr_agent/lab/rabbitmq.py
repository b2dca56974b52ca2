"""A private RabbitMQ node: its own directory, ports, epmd and Erlang cookie, held by PID.

Debian's ``/usr/sbin/rabbitmq-server`` switches to the ``rabbitmq`` user and the system's
/var/lib/rabbitmq; ``/usr/lib/rabbitmq/bin/rabbitmq-server`` run in the foreground with
RABBITMQ_* variables pointing into a private directory does neither. Erlang would start a
shared, daemonised ``epmd`` on 4369 that nobody owns and that outlives the node (the test
leak guard rightly flags it); so we start our own epmd on a private port, as a child in the
foreground, and point the node at it with ERL_EPMD_PORT. Stop is by PID: the node's start
script (SIGTERM runs ``rabbitmqctl stop`` and waits), then the beam if it still runs, then
our epmd.

Users and vhosts: tests use guest on 127.0.0.1; the lab's agents connect from other network
namespaces, where guest is refused, so ``add_user`` makes a user with its own vhost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import quote

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"


class BrokerError(RuntimeError):
    """The node did not start, or a rabbitmqctl command failed; the message says which."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"{proc.args[0]} exited with {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout} s")


def _stop(proc: subprocess.Popen | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class RabbitMQNode:
    """One broker node. ``start()`` returns once it accepts AMQP; ``stop()`` leaves nothing."""

    host: str = "127.0.0.1"
    base_dir: str | None = None
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    name: str = ""
    # argv prefix that runs a program where the node lives (e.g. nsenter into the lab's
    # controller namespace); the node's own processes are then started by the caller
    prefix: tuple[str, ...] = ()
    # TLS: {"cacert": path, "cert": path, "key": path}; AMQP over TLS on tls_port
    tls: dict[str, str] | None = None
    tls_port: int = field(default_factory=free_port)
    _own_dir: bool = False
    _epmd: subprocess.Popen | None = None
    _server: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        if self.base_dir is None:
            self.base_dir = tempfile.mkdtemp(prefix="dvr-rabbitmq-")
            self._own_dir = True
        self.name = self.name or f"dvr{self.amqp_port}@localhost"

    # ------------------------------------------------------------- environment

    def env(self) -> dict[str, str]:
        d = self.base_dir
        return {**os.environ,
                "HOME": d,  # the Erlang cookie lives here, shared by server and rabbitmqctl
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_IP_ADDRESS": self.host,
                "RABBITMQ_NODE_PORT": str(self.amqp_port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "ERL_EPMD_PORT": str(self.epmd_port),
                # never let the node or rabbitmqctl start an epmd of their own: it would be
                # daemonised, owned by nobody, and outlive us (ours is started by start())
                "ERL_FLAGS": "-start_epmd false",
                # a crash dump goes with the node, not into the caller's working directory
                "ERL_CRASH_DUMP": os.path.join(d, "erl_crash.dump"),
                "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
                "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
                "RABBITMQ_PID_FILE": os.path.join(d, "rabbitmq.pid"),
                "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
                "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf")}

    def _write_config(self) -> None:
        d = self.base_dir
        for sub in ("mnesia", "log"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = {self.host}:{self.amqp_port}\n"
                    "log.console = false\nlog.file.level = info\n")
            if self.tls:
                f.write(f"listeners.ssl.default = {self.host}:{self.tls_port}\n"
                        f"ssl_options.cacertfile = {self.tls['cacert']}\n"
                        f"ssl_options.certfile = {self.tls['cert']}\n"
                        f"ssl_options.keyfile = {self.tls['key']}\n"
                        "ssl_options.verify = verify_none\n"
                        "ssl_options.fail_if_no_peer_cert = false\n")
        with open(os.path.join(d, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        for name in ("advanced.config", "rabbitmq-env.conf"):
            with open(os.path.join(d, name), "w") as f:
                f.write("[].\n" if name.endswith(".config") else "")

    # ------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0) -> RabbitMQNode:
        self._write_config()
        log = open(os.path.join(self.base_dir, "stdout.log"), "ab")  # noqa: SIM115
        try:
            self._epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          env=self.env())
            _wait_port("127.0.0.1", self.epmd_port, 10, self._epmd)
            self._server = subprocess.Popen([RABBITMQ_SERVER], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, env=self.env())
            # await_startup fails at once while the node is not yet registered with epmd;
            # the AMQP port opening is the sign that it is.
            _wait_port(self.host, self.amqp_port, timeout, self._server)
            self.ctl("await_startup", timeout=timeout)
        except BaseException:
            self.stop()
            raise
        finally:
            log.close()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node and our epmd, by PID, and remove the directory if we made it."""
        _stop(self._server, timeout)
        beam = self._beam_pid()
        if beam is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(beam, signal.SIGKILL)
        _stop(self._epmd, 10)
        self._server = self._epmd = None
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _beam_pid(self) -> int | None:
        """The beam's PID if it still runs (a node that ignored its stop script)."""
        try:
            with open(self.env()["RABBITMQ_PID_FILE"]) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def __enter__(self) -> RabbitMQNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- administration

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` against this node; BrokerError on failure."""
        cmd = [*self.prefix, RABBITMQCTL, "-n", self.name, *args]
        if args and args[0] == "await_startup":
            cmd += ["--timeout", str(int(timeout))]
        try:
            # rabbitmqctl is an Erlang VM too: when it cannot reach the node it "crashes";
            # its dump helps nobody
            env = {**self.env(), "ERL_CRASH_DUMP_SECONDS": "0"}
            done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=timeout + 15, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} timed out") from None
        if done.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} failed: "
                              f"{(done.stderr or done.stdout).strip()}")
        return done.stdout

    def add_user(self, user: str, password: str, vhost: str | None = None) -> str:
        """A user with full rights on its own vhost (``/`` if none); returns its URL."""
        vhost = vhost or "/"
        if vhost != "/":
            self.ctl("add_vhost", vhost)
        self.ctl("add_user", user, password)
        self.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        return self.url(user, password, vhost)

    def url(self, user: str = "guest", password: str = "guest", vhost: str = "/",
            host: str | None = None) -> str:
        """The oslo.messaging transport_url of this node."""
        return (f"rabbit://{quote(user, safe='')}:{quote(password, safe='')}@"
                f"{host or self.host}:{self.amqp_port}/{quote(vhost, safe='')}")
