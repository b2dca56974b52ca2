"""``dvr-agent --config-file /etc/dvr-agent/dvr-agent.conf``: the daemon's entry point."""

from __future__ import annotations

import faulthandler
import logging
import os
import resource
import signal
import sys

from oslo_config import cfg
from oslo_log import log as oslo_logging

from dvr_agent import signals
from dvr_agent.agent import config
from dvr_agent.agent.daemon import Daemon, FatalError
from dvr_agent.agent.memory import tune_allocator

LOG = logging.getLogger(__name__)


def _raise_fd_limit() -> None:
    """A netlink socket per namespace: a thousand routers need more than 1024 files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    conf = cfg.CONF
    config.register(conf)
    oslo_logging.register_options(conf)
    oslo_logging.set_defaults(default_log_levels=[
        *oslo_logging.get_default_log_levels(), "pyroute2=WARNING", "ovsdbapp=WARNING"])
    try:
        conf(sys.argv[1:] if argv is None else argv, project="dvr-agent")
        config.check(conf)
    except (cfg.Error, config.ConfigError) as exc:
        print(f"dvr-agent: {exc}", file=sys.stderr)
        return 2
    oslo_logging.setup(conf, "dvr-agent")
    conf.log_opt_values(LOG, logging.DEBUG)  # secret options (transport_url) as ****
    _raise_fd_limit()
    tune_allocator()
    # systemd's watchdog ends a hung agent with SIGABRT: the journal then shows where
    # every thread was stuck (stderr goes to the journal)
    faulthandler.enable(all_threads=True)
    # `kill -USR1 <pid>`: every thread's stack to stderr, from C, even while the main
    # thread cannot run Python (a stop that never began says where it was stuck)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        daemon = Daemon(conf)
    except FatalError as exc:
        print(f"dvr-agent: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: daemon.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: daemon.stopping.set())
    failure = None
    try:
        daemon.start()
        signals.wait_until_set(daemon.stopping)
        failure = daemon.failure
    except FatalError as exc:
        failure = str(exc)
    finally:
        daemon.stop()
    if failure:
        LOG.error("cannot run: %s", failure)
        print(f"dvr-agent: {failure}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """The console script: after stop(), exit at once. oslo.messaging may still hold
    threads draining their last poll; everything of ours is on disk and in the kernel,
    so waiting for them would only make `systemctl stop` slower."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
