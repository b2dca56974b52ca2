from tests.fixtures.ovs import ovs  # noqa: F401
from tests.fixtures.postgres import postgres, postgres_url  # noqa: F401
from tests.fixtures.rabbitmq import rabbitmq  # noqa: F401
from tests.root_conftest import (  # noqa: F401
    leak_guard,
    pytest_runtest_makereport,
    session_leak_guard,
)
