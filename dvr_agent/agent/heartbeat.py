"""report_state, as Neutron's L3 agent and OVS agent each send it, every report_interval.

The heartbeat is also how the agent notices that it was cut off: when reports start
to succeed again after failing (a broker or server outage), or the server answers
``revived`` (it had given us up for dead), notifications may have been lost meanwhile,
so a full sync follows. Nothing is removed while the server cannot be reached.

While reports fail the heartbeat probes every second or two with a short timeout instead
of every report_interval: right after a broker comes back, the first call's reply is often
lost (the reply queue is re-declared by a consumer that reconnects later than the
publisher), and waiting a whole report_interval (30 s by default) for it, then another
for the next report, would delay the full sync by a minute. The jitter spreads the
probes of many agents so that a recovering server is not hit by all of them at once.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from dvr_agent.agent import config as agent_config
from dvr_agent.rpc import broker_errors
from dvr_agent.rpc.agent_states import Counts, l3_agent_state, ovs_agent_state

if TYPE_CHECKING:
    from dvr_agent.agent.daemon import Daemon

LOG = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
PROBE_INTERVAL = 1.0


def _counts(facts) -> Counts:
    routers = facts.routers.values()
    return Counts(routers=len(facts.routers),
                  ex_gw_ports=sum(1 for r in routers if facts.hosts_gateway(r)),
                  interfaces=sum(len(r.interfaces) for r in routers),
                  floating_ips=sum(len(facts.local_fips(r)) + len(facts.central_fips(r))
                                   for r in routers),
                  devices=len(facts.vifs))


class Heartbeat:
    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._start_flag = True
        self._failing = False
        self.reports = 0

    def run(self) -> None:
        interval = self._d.conf.agent.report_interval
        while True:
            self.report_once()
            wait = (min(interval, PROBE_INTERVAL + random.random()) if self._failing
                    else interval)
            if self._d.stopping.wait(wait):
                return

    def report_once(self) -> None:
        d, conf = self._d, self._d.conf
        counts = d.core.read(_counts)
        states = [
            l3_agent_state(d.host, conf.agent.agent_mode, conf.agent.availability_zone, counts,
                           self._start_flag),
            ovs_agent_state(d.host, conf.ovs.local_ip, agent_config.bridge_mappings(conf),
                            conf.ovs.integration_bridge, conf.ovs.datapath_type,
                            counts.devices, self._start_flag),
        ]
        timeout = conf.agent.report_interval
        if self._failing:
            timeout = min(timeout, PROBE_TIMEOUT)
        try:
            answers = [d.api.report_state(state, timeout=timeout) for state in states]
        except broker_errors.RPC_FAILURES as exc:
            if not self._failing:
                LOG.warning("heartbeat failed (%s: %s): the data plane stays as it is; "
                            "a full sync follows when the server is back",
                            exc.__class__.__name__, exc)
            self._failing = True
            return
        self.reports += 1
        recovered = self._failing or "revived" in answers
        self._failing = False
        self._start_flag = False
        if recovered and d.fetcher.full_syncs:
            LOG.info("server reachable again (%s): full sync", "/".join(map(str, answers)))
            d.fetcher.request_full_sync()
