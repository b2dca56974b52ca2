"""dvr-agent: a distributed virtual router for real Linux hosts (Neutron DVR, rebuilt)."""

from dvr_agent import threads_only

threads_only.install()
