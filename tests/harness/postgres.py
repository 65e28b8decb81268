"""A throwaway PostgreSQL server for tests: initdb in a temporary directory, started with
pg_ctl on a free loopback port, trust authentication, stopped and deleted at the end.

PostgreSQL refuses to run as root, so as root (CI) initdb and pg_ctl run as the `postgres`
user (`runuser -u postgres`), which the Debian package creates. Where no server can be
started (no binaries, no such user, not root and not allowed) `start()` raises
`PostgresUnavailable` with the reason, for the test to skip with it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 30.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb); `make setup-test` installs it with apt-get "
        "where it runs as root"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bin_dir: Path
    run_as: list[str]
    _counter: int = 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database's URL (one per test, so tests never see each other's
        rows)."""
        import psycopg

        self._counter += 1
        name = f"t{os.getpid()}_{self._counter}"
        with psycopg.connect(self.admin_url, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
             "-m", "immediate", "stop"],
            capture_output=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)


def start() -> PostgresServer:
    bin_dir = _binaries()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed (pip install '.[test]')") from None
    directory = Path(tempfile.mkdtemp(prefix="chinwag-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable("running as root and there is no runuser to drop to postgres")
        os.chown(directory, user.pw_uid, user.pw_gid)
        run_as = [runuser, "-u", "postgres", "--"]
    data = directory / "data"
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run(
            [*run_as, *command], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            raise PostgresUnavailable(
                f"{Path(command[0]).name} failed: {(done.stderr or done.stdout).strip()[-400:]}"
            )

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {directory} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(directory / "log"),
        "-w", "-t", str(int(START_TIMEOUT)), "start")  # fmt: skip
    server = PostgresServer(directory, port, bin_dir, run_as)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresUnavailable(
                    "the PostgreSQL server did not accept connections"
                ) from None
            time.sleep(0.1)
