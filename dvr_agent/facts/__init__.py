"""The agent's cache of facts (no I/O); see cache.Facts."""

from dvr_agent.facts.allocations import Allocations, PoolExhausted
from dvr_agent.facts.cache import Facts, SyncedKeys
from dvr_agent.facts.config import AgentConfig

__all__ = ["AgentConfig", "Allocations", "Facts", "PoolExhausted", "SyncedKeys"]
