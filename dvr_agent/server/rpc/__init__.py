"""dvr-server's RPC endpoints: Neutron's agent-facing topics and the management topic."""
