"""Where runs and studies are stored: URIs resolved, checked fast, and shown without passwords.

MLflow and Optuna retry a store they cannot reach for minutes (MLflow's HTTP client about
four, with ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=7`` and backoff factor 2; its SQL store ten
engine attempts) and then print a long traceback; an empty ``mlflow.db`` is silently
rebuilt and a damaged one gives SQLAlchemy's error without the file's name. The checks
here run first, take at most :data:`CONNECT_TIMEOUT_S` seconds per store, and raise
``ConfigError`` with one line that names the store: the CLI prints it and exits 2.

This module imports neither MLflow nor Optuna (SQLAlchemy, which both bring, only for
database URLs), so it serves the tracking store and the Optuna study storage alike.
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ipwarmup.errors import ConfigError

CONNECT_TIMEOUT_S = 5
"""Seconds to wait for a tracking server or a database to answer the first request."""
SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite 3 database file."""


class StoreError(ConfigError):
    """A store cannot be used at all: unreachable, empty, damaged, foreign, or no driver.

    Unlike a missing experiment or store (a plain ``ConfigError``), nothing about the
    request can be answered; commands report it as it is.
    """


_MLFLOW_TABLES = frozenset({"experiments", "runs", "alembic_version"})
_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^/:@\s]*):[^/@\s]*@", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide every password of ``scheme://user:password@host/...`` in a URI or command line."""
    return _PASSWORD.sub(r"\1:***@", text)


def tracking_uri(uri: str | None = None) -> str:
    """Resolve the tracking URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else embedded SQLite.

    The embedded default is ``sqlite:///<cwd>/mlflow.db`` with an absolute path, so the
    store stays put if the process changes directory. An empty ``uri`` counts as none.
    """
    if uri:
        return uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` URI (None for anything else)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def artifact_root(uri: str | None = None) -> str:
    """Return the artifact location, a file URI, of new experiments on a database store.

    That is ``mlartifacts`` beside an SQLite database (by default the embedded store:
    ``<cwd>/mlartifacts``), or in the working directory for other databases, rather than
    ``./mlruns`` of wherever a run started.
    """
    database = sqlite_path(uri) if uri else None
    folder = database.parent if database else Path.cwd()
    return (folder.absolute() / "mlartifacts").as_uri()


def is_server(uri: str) -> bool:
    """Return whether ``uri`` names a tracking server (HTTP or HTTPS) rather than a store."""
    return uri.lower().startswith(("http://", "https://"))


def is_database(uri: str) -> bool:
    """Return whether ``uri`` is an SQLAlchemy database URL (``sqlite:``, ``postgresql:``...)."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme.split("+", 1)[0] in {"sqlite", "postgresql", "mysql", "mssql"}


def check_tracking_store(uri: str, *, create: bool, missing: str | None = None) -> None:
    """Refuse, in one line naming it, a tracking store that cannot serve this process.

    A server must answer within :data:`CONNECT_TIMEOUT_S`; an SQLite file must be an
    intact SQLite database with MLflow's tables (or, when ``create``, not exist yet); any
    other database must accept a connection in time and, unless ``create``, hold MLflow's
    tables already, so that a read-only command never creates a store. ``missing`` names
    what is not found in that case (by default the tracking URI).

    Raises:
        ConfigError: the store is unreachable, missing (with ``create=False``), empty,
            damaged, not an MLflow store, or its database driver is not installed.
    """
    if is_server(uri):
        _check_server(uri)
    elif (database := sqlite_path(uri)) is not None:
        _check_sqlite(uri, database, create=create, missing=missing)
    elif is_database(uri):
        tables = database_tables(uri, what=f"tracking URI {redact(uri)}")
        if not create and not tables >= _MLFLOW_TABLES:
            where = missing or f"tracking URI {redact(uri)}"
            raise ConfigError(f"{where}: not found (the database has no MLflow tables)")


def database_tables(url: str, *, what: str) -> set[str]:
    """Connect to a database URL within the timeout and return its table names.

    Raises:
        ConfigError: the driver is missing or the database does not answer; ``what``
            names the store in the message.
    """
    import sqlalchemy

    connect_args: dict[str, Any] = {}
    if url.lower().startswith(("postgresql", "mysql")):
        # libpq and MySQL drivers wait for the OS's TCP timeout (minutes) without it.
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    except ModuleNotFoundError as error:
        extra = " (pip install 'ipwarmup[postgres]')" if url.startswith("postgresql") else ""
        raise StoreError(f"{what}: needs the {error.name} driver{extra}") from error
    except sqlalchemy.exc.ArgumentError as error:
        raise StoreError(f"{what}: not a database URL ({_first_line(error)})") from error
    try:
        with engine.connect() as connection:
            return set(sqlalchemy.inspect(connection).get_table_names())
    except sqlalchemy.exc.SQLAlchemyError as error:
        original = getattr(error, "orig", None)  # the driver's own error, without SQL
        cause = _first_line(original if isinstance(original, BaseException) else error)
        raise StoreError(f"{what}: cannot connect ({cause})") from error
    finally:
        engine.dispose()


def _check_server(uri: str) -> None:
    """Ask the server's ``/health`` once; any HTTP answer, even an error status, is a server."""
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=CONNECT_TIMEOUT_S):  # http(s) only
            return
    except urllib.error.HTTPError:
        return  # it answered: authentication or routing is MLflow's to report
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        text = getattr(reason, "strerror", None) or str(reason)
        raise StoreError(
            f"tracking URI {redact(uri)}: no tracking server answers ({text})"
        ) from error


def _check_sqlite(uri: str, database: Path, *, create: bool, missing: str | None) -> None:
    where = f"tracking URI {redact(uri)}"
    if not database.exists():
        if create:
            return
        raise ConfigError(f"{missing or where}: not found (no database file {database})")
    if not database.is_file():
        raise StoreError(f"{where}: {database} is not a file")
    size = database.stat().st_size
    if size == 0:
        raise StoreError(
            f"{where}: {database} is empty (0 bytes), not an MLflow store; delete it or "
            "choose another --tracking-uri"
        )
    with database.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise StoreError(f"{where}: {database} is not an SQLite database ({size} bytes)")
    try:
        # Read-only, so that checking a store never changes it.
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
            query = "SELECT name FROM sqlite_master WHERE type='table'"
            tables = {row[0] for row in connection.execute(query)}
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{where}: {database} is damaged ({error})") from error
    if problems != ["ok"]:
        raise StoreError(f"{where}: {database} is damaged ({problems[0]})")
    if not tables >= _MLFLOW_TABLES:
        raise StoreError(f"{where}: {database} is an SQLite database without MLflow's tables")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
