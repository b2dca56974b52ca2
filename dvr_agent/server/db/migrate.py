"""Schema migrations with alembic, driven from code: ``dvr-server db upgrade``."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema this code needs."""


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    config.set_main_option("sqlalchemy.url",
                           engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(_config_for_scripts())
    return script.get_current_head()


def _config_for_scripts() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent at head)."""
    config = _config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def check_current(engine: Engine) -> None:
    """Refuse to serve on a schema other than the one this code was written for."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database {engine.url.render_as_string(hide_password=True)} is at schema "
            f"{current or 'none'}, this dvr-server needs {head}: run `dvr-server db upgrade`")
