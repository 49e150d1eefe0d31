"""The SQL database behind ``Storage``: a SQLite file, or PostgreSQL when a ``postgresql://`` URL is set.

``Storage`` writes each statement once, in SQLite's dialect with ``?`` placeholders.
This module connects to either database and bridges the differences:

- placeholders: ``?`` becomes ``%s`` for psycopg;
- rows: both backends return rows that ``row["name"]`` and ``dict(row)`` read;
- schema text: SQLite's ``INTEGER`` and ``REAL`` become PostgreSQL's 8-byte ``BIGINT`` and
  ``DOUBLE PRECISION``, so stream sizes past 2 GiB and frame rates keep SQLite's range and precision;
- schema changes: one transaction that holds a lock, so processes that start together
  (an API and its workers) do not create the same table or column twice.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql", "postgres")
# The seconds a SQLite writer waits for another connection's transaction before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_CONNECT_TIMEOUT_S = 10
# Key of the PostgreSQL advisory lock held while the schema changes; any fixed 64-bit number works.
_SCHEMA_LOCK_KEY = 0x6C61_7465_6E74  # "latent" in ASCII

_POSTGRES_TYPES = ((re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))

Parameters = Sequence[Any]


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection that ``Storage`` uses: ``execute`` with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Parameters = ...) -> Cursor: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class Database(ABC):
    """Connections to one database, and the few statements whose text differs between SQLite and PostgreSQL."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Return a name of the database for logs and messages, with any password removed."""

    @abstractmethod
    def connect(self) -> Connection:
        """Open a new connection; the caller closes it."""

    @abstractmethod
    def begin_schema_change(self, connection: Connection) -> None:
        """Start a transaction that no other process's schema change runs beside."""

    @abstractmethod
    def column_names(self, connection: Connection, table: str) -> set[str]:
        """Return the names of the columns of ``table`` (empty when it does not exist)."""

    def schema_sql(self, text: str) -> str:
        """Return schema text written for SQLite in this database's dialect."""
        return text

    def run_script(self, connection: Connection, script: str) -> None:
        """Run the ``;``-separated statements of ``script`` in the connection's transaction.

        The split is textual, so no statement may contain a ``;`` inside a string literal.
        """
        for statement in script.split(";"):
            if statement.strip():
                connection.execute(self.schema_sql(statement))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Yield a new connection; commit when the block ends normally, else roll back, then close."""
        connection = self.connect()
        try:
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()


class SqliteDatabase(Database):
    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def description(self) -> str:
        return f"SQLite file {self.path}"

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_S)
        connection.row_factory = sqlite3.Row
        return connection

    def begin_schema_change(self, connection: Connection) -> None:
        # IMMEDIATE takes the write lock now, so a second process waits here instead of
        # failing later on a column that the first one has just added.
        connection.execute("BEGIN IMMEDIATE")

    def column_names(self, connection: Connection, table: str) -> set[str]:
        return {row["name"] for row in connection.execute(f"PRAGMA table_info({_identifier(table)})").fetchall()}


class PostgresDatabase(Database):
    def __init__(self, url: str):
        self.url = url

    @property
    def description(self) -> str:
        return f"PostgreSQL at {redact_url(self.url)}"

    def connect(self) -> Connection:
        # Imported here, so that SQLite deployments work without loading the PostgreSQL driver.
        import psycopg
        from psycopg.rows import dict_row

        try:
            connection = psycopg.connect(self.url, row_factory=dict_row, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.description}: {exc}; check that PostgreSQL runs and LATENTCAST_DATABASE_URL"
            ) from exc
        return _PostgresConnection(connection)

    def begin_schema_change(self, connection: Connection) -> None:
        # The lock is released when the transaction ends.
        connection.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK_KEY,))

    def column_names(self, connection: Connection, table: str) -> set[str]:
        rows = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ?", (table,),
        ).fetchall()
        return {row["column_name"] for row in rows}

    def schema_sql(self, text: str) -> str:
        for pattern, replacement in _POSTGRES_TYPES:
            text = pattern.sub(replacement, text)
        return text


class _PostgresConnection:
    """A psycopg connection whose ``execute`` takes SQLite's ``?`` placeholders."""

    def __init__(self, connection: Any):
        self._connection = connection

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        if not parameters:
            # Without parameters psycopg sends the text as it is, so a literal % stays single.
            return self._connection.execute(sql)
        # psycopg reads % as the start of a placeholder; the statements here have no ? inside literals.
        return self._connection.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(parameters))

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        self._connection.close()


class DatabaseUnavailable(RuntimeError):
    """The database server could not be reached."""


def open_database(url: str | None, sqlite_path: Path) -> Database:
    """Return the PostgreSQL database that ``url`` names, or the SQLite file at ``sqlite_path`` when ``url`` is None."""
    if url is None:
        return SqliteDatabase(sqlite_path)
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {scheme!r} in {redact_url(url)}; "
            "use postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or leave it unset for SQLite in the data folder"
        )
    return PostgresDatabase(url)


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"invalid table name {name!r}: expected letters, digits and underscores")
    return name
