"""Private PostgreSQL servers for the tests: ``initdb`` + a server on a free loopback port.

Each ``PostgresServer`` owns a fresh data directory (``initdb``, trust authentication on
loopback only) and runs the ``postgres`` server process itself (what ``pg_ctl start`` would run,
but as our child, so that it dies with the tests and ``kill()`` can SIGKILL it). Run as root,
the server and ``initdb`` run as the ``postgres`` user, in a directory that user owns. Never the
machine's own server. Readiness is polled with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from tests.redis_servers import (
    _DIE_WITH_PARENT,
    PortInUseError,
    ServerExitedError,
    _tail,
    wait_ports_closed,
)
from tests.support.ports import HOST, free_port
from tests.support.waiting import poll

__all__ = ["PostgresServer", "find_binary"]

START_TIMEOUT = 30.0
_PORT_ATTEMPTS = 5


def find_binary(name: str) -> str | None:
    """``name`` on PATH, or in the newest ``/usr/lib/postgresql/*/bin`` (Debian's place)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def _children(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (the server's backends and workers)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(Path(stat).parts[2]))
    return found


class PostgresServer:
    def __init__(self, *, initdb: str, postgres: str) -> None:
        self.initdb = initdb
        self.postgres = postgres
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        self.directory = Path(tempfile.mkdtemp(prefix="stickyctx-pg-"))
        self.data = self.directory / "data"
        self.logfile = self.directory / "server.log"
        self.port = free_port()
        self._may_move = True
        self.process: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync"])

    def __repr__(self) -> str:
        return f"<postgres {HOST}:{self.port} in {self.directory}>"

    def _as_user(self) -> dict[str, Any]:
        return {"user": self.user, "group": self.user, "extra_groups": []} if self.user else {}

    def _run(self, argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True, cwd=self.directory,
                       env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
                       **self._as_user())

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=2, **kwargs)

    def start(self) -> PostgresServer:
        for _attempt in range(_PORT_ATTEMPTS):
            try:
                self._spawn_and_wait()
                return self
            except PortInUseError:
                if not self._may_move:
                    raise
                self.port = free_port()
        raise PortInUseError(f"{self!r}: no free port after {_PORT_ATTEMPTS} attempts")

    def _spawn_and_wait(self) -> None:
        offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        log = self.logfile.open("ab")
        # fsync off: a SIGKILLed server keeps what it wrote (the kernel has it); only a power
        # cut would lose it, which no test plays.
        self.process = subprocess.Popen(
            [self.postgres, "-D", str(self.data), "-p", str(self.port), "-c",
             f"listen_addresses={HOST}", "-c", f"unix_socket_directories={self.directory}",
             "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
            preexec_fn=_DIE_WITH_PARENT, **self._as_user())
        log.close()

        def alive() -> None:
            if self.process is not None and self.process.poll() is not None:
                text = _tail(self.logfile, offset)
                if "Address already in use" in text or "could not bind" in text:
                    raise PortInUseError(text)
                raise ServerExitedError(f"{self!r} exited: {text}")

        def answers() -> bool:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
            except psycopg.OperationalError:
                return False
            return True

        poll(answers, timeout=START_TIMEOUT, what=f"{self!r} accepting connections",
             alive=alive)
        self._may_move = False

    def kill(self) -> None:
        """SIGKILL the server and every process of it (a crash: no shutdown checkpoint)."""
        if self.process is None:
            return
        pid = self.process.pid
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        self.process.wait(timeout=10)
        poll(lambda: not any(Path(f"/proc/{v}").exists() and v != pid for v in victims),
             timeout=10, what="the server's processes gone")
        wait_ports_closed([self.port])

    def stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> PostgresServer:
        """Start again on the same port and data (crash recovery after ``kill``)."""
        self._spawn_and_wait()
        return self

    def close(self) -> None:
        if self.running:
            self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
