from tests.fixtures.ovs import ovs  # noqa: F401
from tests.root_conftest import leak_guard, session_leak_guard  # noqa: F401
