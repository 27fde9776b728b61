"""Opening the database and bringing its schema up to date."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from ..config import Config, crossroads_home
from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no file lock; one process migrates there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Database", "database_url_for", "open_database"]


def database_url_for(config: Config | None = None) -> str:
    """``database_url`` from config, else ``$CROSSROADS_DATABASE_URL``, else SQLite."""
    if config is not None and config.database_url:
        return config.database_url
    env = os.environ.get("CROSSROADS_DATABASE_URL")
    if env:
        return env
    home = crossroads_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'crossroads.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@dataclass
class Database:
    url: str
    engine: Engine

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


#: PostgreSQL advisory lock id held while migrating (any constant the app owns).
_MIGRATION_LOCK = 0x63726F7373  # "cross"


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """One migrator at a time on a SQLite file: ``serve --workers N`` starts N processes
    that open a fresh database at the same moment, and two running the migrations at
    once fail ("table ... already exists"). PostgreSQL takes an advisory lock instead
    (in :func:`_upgrade`); an in-memory database has nobody to race."""
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if not path or path == ":memory:" or fcntl is None:
        yield
        return
    with open(path + ".migrate.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _upgrade(engine: Engine) -> None:
    """Apply the package's Alembic migrations (idempotent, one process at a time)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    with (
        resources.as_file(resources.files("crossroads.store") / "migrations") as folder,
        _migration_lock(str(engine.url)),
    ):
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(folder))
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")


def open_database(url: str | None = None, *, config: Config | None = None) -> Database:
    """Connect and migrate. Errors say which database and what to do."""
    url = url or database_url_for(config)
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _upgrade(engine)
    except (SQLAlchemyError, OSError) as exc:
        safe = url.split("@")[-1]  # never print credentials
        raise ConfigError(
            f"Cannot open the database ({safe}): {exc.__class__.__name__}: {exc}. "
            "Check `database_url` in crossroads.yaml or $CROSSROADS_DATABASE_URL."
        ) from exc
    return Database(url, engine)
