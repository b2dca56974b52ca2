"""Engine and units of work: short transactions, one writer at a time, retried on races.

SQLite is the default and must stay correct under a few hundred concurrent RPC handlers.
SQLite allows one writer per database; a second one waits in its busy handler and, when a
read transaction tries to upgrade to a write, fails with "database is locked" at once
whatever the timeout. So: WAL (readers never block the writer nor each other), every write
runs in its own short transaction behind one lock per process (writers queue on the lock,
not in SQLite), reads run in their own sessions and never write. The busy timeout remains as
a second fence against other processes (``dvr-server db upgrade`` beside a running server).

MariaDB/PostgreSQL take the same path; the lock costs them nothing at our rates, and the
retry on uniqueness races and deadlocks keeps several server processes correct.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy
import tenacity
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

LOG = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_FILE = "dvr-server.sqlite"
# PostgreSQL serialization failure and deadlock; MySQL deadlock and lock wait timeout.
_RETRIABLE_PGCODES = {"40001", "40P01"}
_RETRIABLE_MYSQL_CODES = {1213, 1205}


def default_url(state_path: str) -> str:
    """The SQLite file under the state directory (created if missing)."""
    os.makedirs(state_path, exist_ok=True)
    return f"sqlite:///{os.path.join(state_path, SQLITE_FILE)}"


def _is_retriable(exc: BaseException) -> bool:
    """A race another writer won (unique key taken) or the database chose us as a victim."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        if getattr(exc.orig, "pgcode", None) in _RETRIABLE_PGCODES:
            return True
        args = getattr(exc.orig, "args", ())
        if args and args[0] in _RETRIABLE_MYSQL_CODES:
            return True
    return False


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every DB test
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; WAL keeps it safe
        cur.close()


class Database:
    """One database: ``read(work)`` and ``write(work)`` run ``work(session)`` in a transaction."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30000, max_retries: int = 10):
        self.url = url
        kwargs: dict = {"future": True}
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000.0,
                                      "check_same_thread": False}
            kwargs["pool_size"] = 20
            kwargs["max_overflow"] = 40
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
        self.engine = sqlalchemy.create_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine, busy_timeout_ms)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()
        self._max_retries = max_retries

    @property
    def safe_url(self) -> str:
        """The URL with its password masked: the only form of it that may be logged."""
        return self.engine.url.render_as_string(hide_password=True)

    def read(self, work: Callable[[Session], T]) -> T:
        """Run a read-only unit of work in its own transaction (never blocks on writers)."""
        with self._sessions() as session:
            try:
                return work(session)
            finally:
                session.rollback()

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one short write transaction, serialised in this process.

        ``work`` may run more than once (after a lost race), so it must do nothing but
        database work; notifications are sent by the caller after this returns.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retriable),
            stop=tenacity.stop_after_attempt(self._max_retries),
            wait=tenacity.wait_random(0, 0.05),
            reraise=True,
            before_sleep=lambda state: LOG.debug("retrying a write after %s",
                                                 state.outcome.exception()),
        )
        return retrying(self._write_once, work)

    def _write_once(self, work: Callable[[Session], T]) -> T:
        with self._write_lock, self._sessions() as session, session.begin():
            return work(session)

    def dispose(self) -> None:
        self.engine.dispose()
