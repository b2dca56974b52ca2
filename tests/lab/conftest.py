from tests.root_conftest import leak_guard, session_leak_guard  # noqa: F401
