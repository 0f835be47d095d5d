"""A private PostgreSQL for the benchmarks: ``initdb`` in a temporary directory and the server
on a free loopback port (as the ``postgres`` user when run as root), killed at exit."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from _servers import free_port, wait_for  # a sibling module: benchmarks run as scripts

__all__ = ["private_postgres", "server_version"]


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian package postgresql)")
    return found


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}"  # type: ignore[index]


@contextmanager
def private_postgres() -> Iterator[str]:
    """Yields the server's ``postgresql://`` URL."""
    as_user: dict[str, Any] = {}
    directory = tempfile.mkdtemp(prefix="bench-pg-")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"}
    data = os.path.join(directory, "data")
    proc = None
    try:
        subprocess.run([_binary("initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync"], check=True,
                       capture_output=True, env=env, **as_user)
        port = free_port()
        proc = subprocess.Popen(
            [_binary("postgres"), "-D", data, "-p", str(port), "-c",
             "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={directory}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **as_user)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

        def answers() -> bool:
            try:
                with psycopg.connect(url, connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False

        wait_for(answers, "postgres", proc)
        yield url
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
