"""Real load balancers (HAProxy, nginx) configured by the real ``stickyctx lb-config`` command.

``generate`` runs ``python -m stickyctx lb-config KIND --listen HOST:PORT -o FILE`` as a
subprocess with the given environment (``STICKYCTX_NODES`` names the backends). ``HAProxy`` and
``Nginx`` run the result in the foreground; ``stop()`` ends the process started here, by its id.

nginx needs one addition to run unprivileged: a packaged nginx writes its access log and temporary
files under system directories, and those directives belong inside the ``http`` block, where no
command-line option reaches. ``nginx_runnable`` inserts them right after ``http {`` and changes
nothing else (a test checks that), so the routing that runs is the routing that was generated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.redis_servers import poll, port_open

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

_NGINX_LOCAL_PATHS = """\
    # Added for an unprivileged test run: logs and temporary files under the -p prefix.
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
"""


def generate(kind: str, listen: str, env: dict[str, str], output: Path) -> str:
    """Run the real CLI and return the configuration it wrote."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STICKYCTX_")}
    full_env.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "stickyctx", "lb-config", kind, "--listen", listen,
         "-o", str(output)],
        env=full_env, cwd=str(ROOT), capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"stickyctx lb-config {kind} failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    return output.read_text()


def nginx_runnable(generated: str) -> str:
    """The generated nginx configuration plus local paths inside its ``http`` block."""
    lines = generated.splitlines(keepends=True)
    index = lines.index("http {\n")
    return "".join([*lines[: index + 1], _NGINX_LOCAL_PATHS, *lines[index + 1:]])


class LoadBalancer:
    kind = ""

    def __init__(self, binary: str, directory: Path, port: int, env: dict[str, str]) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self.env = env
        self.generated = ""
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def configure(self) -> None:
        """Write the configuration with the real CLI (and whatever the binary needs besides)."""
        self.generated = generate(self.kind, f"127.0.0.1:{self.port}", self.env,
                                  self.directory / f"{self.kind}.generated.cfg")

    def start(self) -> LoadBalancer:
        self.configure()
        # A session of its own, so that stop() can also reach nginx's worker processes.
        self.proc = subprocess.Popen(self.argv(), cwd=self.directory, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

        def alive() -> None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}")

        poll(lambda: port_open(self.port), timeout=START_TIMEOUT,
             what=f"{self.kind} listening on {self.port}", alive=alive)
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.poll() is not None:
            return
        proc.terminate()  # nginx's master stops its workers before it exits
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # The group created for this process (start_new_session), while its leader is
            # still unreaped: the process and its workers, nothing else.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)


class HAProxy(LoadBalancer):
    kind = "haproxy"

    def argv(self) -> list[str]:
        return [self.binary, "-f", str(self.directory / "haproxy.generated.cfg"), "-db"]


class Nginx(LoadBalancer):
    kind = "nginx"

    def configure(self) -> None:
        super().configure()
        (self.directory / "tmp").mkdir(exist_ok=True)
        (self.directory / "nginx.conf").write_text(nginx_runnable(self.generated))

    def argv(self) -> list[str]:
        return [self.binary, "-p", f"{self.directory}/", "-c", str(self.directory / "nginx.conf"),
                "-e", "stderr", "-g", "daemon off; pid nginx.pid;"]
