"""Neutron's agent RPC, both sides: topics and versions, clients, endpoints, payload parsing."""
