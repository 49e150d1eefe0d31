"""PostgreSQL and Redis servers started as local processes for the tests, on 127.0.0.1 and free ports.

Both come from Debian's ``postgresql`` and ``redis-server`` packages (``.ci/run`` installs them).
PostgreSQL refuses to run as root, so under uid 0 its commands run as the ``postgres`` user
through ``runuser``, in a folder under the system temp folder that this user owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from latentcast.server.process import free_port

START_TIMEOUT_S = 60.0
POSTGRES_SYSTEM_USER = "postgres"
# The superuser that initdb creates; trust authentication on loopback needs no password.
POSTGRES_USER = "latentcast"


class ServiceError(RuntimeError):
    """A test service could not be found, started or stopped."""


def find_postgres_bin() -> Path:
    """Return the folder of initdb and pg_ctl: Debian's /usr/lib/postgresql/<version>/bin, newest first, else PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found is None:
        raise ServiceError("initdb not found in /usr/lib/postgresql/*/bin or on PATH; "
                           "install PostgreSQL with `apt-get install postgresql`")
    return Path(found).parent


class PostgresServer:
    """A throwaway PostgreSQL cluster: ``initdb`` in a temp folder, ``pg_ctl start`` on a free loopback port."""

    def __init__(self) -> None:
        self.bin_dir = find_postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="latentcast-postgres-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._databases = 0

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user=POSTGRES_SYSTEM_USER, group=POSTGRES_SYSTEM_USER)
        self._run("initdb", "-D", str(self.data_dir), "-U", POSTGRES_USER, "--auth=trust", "--encoding=UTF8",
                  "--no-sync")
        # fsync=off: the cluster is thrown away after the tests, so crash safety buys nothing.
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", str(int(START_TIMEOUT_S)), "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create an empty database and return its URL."""
        self._databases += 1
        name = f"test_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", POSTGRES_SYSTEM_USER, "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
                                   cwd=self.root)
        if completed.returncode != 0:
            log = self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
            raise ServiceError(f"{' '.join(command)} failed with status {completed.returncode}:\n"
                               f"{completed.stdout}{completed.stderr}{log}")


class RedisServer:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        self.executable = shutil.which("redis-server")
        if self.executable is None:
            raise ServiceError("redis-server not found on PATH; install it with `apt-get install redis-server`")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="latentcast-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.root)]
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1.0)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServiceError(f"redis-server exited with status {self.process.returncode}:\n{self.log_text()}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.1)
        finally:
            client.close()
        self.stop()
        raise ServiceError(f"redis-server did not answer PING within {START_TIMEOUT_S:.0f} s:\n{self.log_text()}")

    def flush(self) -> None:
        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        path = self.root / "redis.log"
        return path.read_text(errors="replace") if path.is_file() else ""
