"""A real PostgreSQL server for the tests, started from the Debian ``postgresql`` package.

:class:`PostgresServer` runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin`` (the Debian layout; ``pg_ctl`` on PATH
also works) on a fresh data folder in the system temp folder, listening on a
free port on 127.0.0.1 only, trust authentication for local test use. PostgreSQL
refuses to run as root, so as root the folder is given to the ``postgres`` user
(which the Debian package creates) and the commands run as that user through
``runuser``.

Anything missing is a :class:`PostgresUnavailable` with a message that says what
to do; the fixtures turn it into a failure, never a skip (``make test`` installs
the package when it is missing).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

#: the Debian layout of the server binaries, newest version first
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """The test server cannot be started; the message says why and what to do."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``."""
    candidates = sorted(
        glob.glob(DEBIAN_BINARIES), key=lambda p: int(Path(p).parent.name or 0), reverse=True
    )
    for folder in candidates:
        if (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (pg_ctl, initdb) in /usr/lib/postgresql/*/bin or on "
        "PATH: install the Debian package (`apt-get install -y postgresql`; `make test` "
        "does this)"
    )


class PostgresServer:
    """A throw-away PostgreSQL server; :meth:`start`, :meth:`database_url`, :meth:`stop`."""

    def __init__(self) -> None:
        self.binaries = find_binaries()
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="stratum-pg-"))
        self.data = self.folder / "data"
        self.as_user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.as_user is not None:
            try:
                account = pwd.getpwnam(self.as_user)
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, and there is no `postgres` user to run the server as "
                    "(the Debian package creates it: `apt-get install -y postgresql`)"
                ) from None
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self.started = False

    def _run(self, *command: str) -> None:
        argv = [str(self.binaries / command[0]), *command[1:]]
        if self.as_user is not None:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    def start(self) -> PostgresServer:
        """initdb and start the server; a :class:`PostgresUnavailable` when either fails."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip
        self.started = True
        return self

    def database_url(self, name: str | None = None) -> str:
        """A new, empty database on the server, as a ``postgresql+psycopg://`` URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
