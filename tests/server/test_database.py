from __future__ import annotations

import threading
from pathlib import Path

import pytest

from latentcast.server.database import (
    DatabaseUnavailable, PostgresDatabase, SqliteDatabase, open_database, redact_url,
)
from latentcast.server.process import free_port
from latentcast.server.storage import Storage, new_video_id

SCRIPT = """
CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY, size INTEGER, ratio REAL);
CREATE INDEX IF NOT EXISTS things_size ON things (size)
"""


@pytest.fixture()
def database(tmp_path: Path, database_url: str | None):
    """The SQLite database in tmp_path, then a new PostgreSQL database."""
    return open_database(database_url, tmp_path / "test.sqlite3")


def _create_things(database) -> None:
    with database.transaction() as connection:
        database.begin_schema_change(connection)
        database.run_script(connection, SCRIPT)


def test_open_database_without_url_is_sqlite(tmp_path: Path) -> None:
    database = open_database(None, tmp_path / "a.sqlite3")
    assert isinstance(database, SqliteDatabase)
    assert database.description == f"SQLite file {tmp_path / 'a.sqlite3'}"


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1/db", "postgres://u@127.0.0.1/db"])
def test_open_database_postgres_url(tmp_path: Path, url: str) -> None:
    assert isinstance(open_database(url, tmp_path / "a.sqlite3"), PostgresDatabase)


def test_open_database_rejects_other_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme 'mysql' in mysql://u:\\*\\*\\*@db/x"):
        open_database("mysql://u:secret@db/x", tmp_path / "a.sqlite3")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://user:secret@db:5432/latentcast", "postgresql://user:***@db:5432/latentcast"),
        ("redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://user@db/latentcast", "postgresql://user@db/latentcast"),
        ("postgresql://user:secret@[::1]:5432/x", "postgresql://user:***@[::1]:5432/x"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_postgres_schema_uses_eight_byte_types() -> None:
    database = PostgresDatabase("postgresql://u@127.0.0.1/db")
    assert database.schema_sql("size INTEGER NOT NULL, ratio REAL, note TEXT") == (
        "size BIGINT NOT NULL, ratio DOUBLE PRECISION, note TEXT"
    )


def test_sqlite_schema_unchanged(tmp_path: Path) -> None:
    assert SqliteDatabase(tmp_path / "a.sqlite3").schema_sql("size INTEGER, ratio REAL") == "size INTEGER, ratio REAL"


def test_run_script_creates_tables_and_columns(database) -> None:
    _create_things(database)
    with database.transaction() as connection:
        assert database.column_names(connection, "things") == {"id", "size", "ratio"}


def test_column_names_of_missing_table_empty(database) -> None:
    with database.transaction() as connection:
        assert database.column_names(connection, "missing") == set()


def test_column_names_rejects_bad_table_name(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "a.sqlite3")
    with database.transaction() as connection, pytest.raises(ValueError, match="invalid table name"):
        database.column_names(connection, "videos; DROP TABLE videos")


def test_placeholders_and_dict_rows(database) -> None:
    _create_things(database)
    with database.transaction() as connection:
        connection.execute("INSERT INTO things (id, size, ratio) VALUES (?, ?, ?)", ("a%b", 2**40, 0.1))
        row = connection.execute("SELECT * FROM things WHERE id = ?", ("a%b",)).fetchone()
    assert dict(row) == {"id": "a%b", "size": 2**40, "ratio": 0.1}
    assert row["size"] == 2**40


def test_literal_percent_with_parameters(database) -> None:
    _create_things(database)
    with database.transaction() as connection:
        connection.execute("INSERT INTO things (id, size) VALUES (?, 1)", ("50%",))
        rows = connection.execute("SELECT id FROM things WHERE id LIKE '%\\%' ESCAPE '\\' AND size = ?",
                                  (1,)).fetchall()
    assert [row["id"] for row in rows] == ["50%"]


def test_transaction_rolls_back_on_error(database) -> None:
    _create_things(database)
    with pytest.raises(RuntimeError, match="stop here"):
        with database.transaction() as connection:
            connection.execute("INSERT INTO things (id) VALUES (?)", ("kept?",))
            raise RuntimeError("stop here")
    with database.transaction() as connection:
        assert connection.execute("SELECT id FROM things").fetchall() == []


def test_rowcount_after_update(database) -> None:
    _create_things(database)
    with database.transaction() as connection:
        connection.execute("INSERT INTO things (id, size) VALUES (?, 1)", ("a",))
        connection.execute("INSERT INTO things (id, size) VALUES (?, 1)", ("b",))
        cursor = connection.execute("UPDATE things SET size = ? WHERE size = ?", (2, 1))
    assert cursor.rowcount == 2


def test_storage_open_from_threads_at_once(tmp_path: Path, database_url: str | None) -> None:
    """Processes that start together (an API and its workers) create the schema once, without errors."""
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_storage() -> None:
        try:
            store = Storage(tmp_path / "data", tmp_path / "data.sqlite3", database_url)
            start.wait()
            store.open()
        except BaseException as exc:  # collected so the main thread can report it
            errors.append(exc)

    threads = [threading.Thread(target=open_storage) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Storage(tmp_path / "data", tmp_path / "data.sqlite3", database_url)
    assert store.get(new_video_id()) is None


def test_postgres_unreachable_names_url_without_password() -> None:
    database = PostgresDatabase(f"postgresql://user:secret@127.0.0.1:{free_port()}/db")
    with pytest.raises(DatabaseUnavailable) as raised:
        database.connect()
    assert "cannot connect to PostgreSQL at postgresql://user:***@127.0.0.1:" in str(raised.value)
    assert "secret" not in str(raised.value)
