"""The DVR compiler: facts of one host in, the desired state of that host out. Pure.

It never imports drivers, RPC, oslo, sockets, time or logging (a test checks), so golden
tests taken from the seed cover it without root.
"""

from dvr_agent.compiler.host import compile_host, compile_key, wanted_keys

__all__ = ["compile_host", "compile_key", "wanted_keys"]
