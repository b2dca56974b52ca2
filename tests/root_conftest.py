"""Shared conftest logic of the root test layers (functional, lab): isolation and the guard."""

from __future__ import annotations

import os

import pytest

from tests.fixtures import guard
from tests.isolated import ISOLATED_ENV

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Mark a test whose setup or call failed, so its fixtures can show their daemons' logs
    in the report (a CI failure is then explained by what is printed, not guessed)."""
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


def has_failed(request: pytest.FixtureRequest) -> bool:
    """True, in a fixture's teardown, if the test using it has failed so far."""
    return request.node.stash.get(FAILED, False)


def require_isolation() -> None:
    """Root tests only run inside tests/isolated.py, as root: say so clearly otherwise."""
    if os.geteuid() != 0 or os.environ.get(ISOLATED_ENV) != "1":
        pytest.exit(
            "the functional and lab tests need root and run isolated: "
            "`make test`, `tox -e functional`, or `python tests/isolated.py pytest ...`",
            returncode=2,
        )


@pytest.fixture(scope="session", autouse=True)
def session_leak_guard():
    """Nothing the session made may outlive it."""
    require_isolation()
    start = guard.snapshot()
    yield
    message = guard.check_and_clean(start, "at the end of the session")
    if message:
        pytest.fail(message)


@pytest.fixture(autouse=True)
def leak_guard(session_leak_guard):
    """Fail a test that leaves a namespace, device or process behind (and clean it up)."""
    before = guard.snapshot()
    yield
    message = guard.check_and_clean(before, "by this test")
    if message:
        pytest.fail(message)
