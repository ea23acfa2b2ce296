"""Start and stop a production server (gunicorn, threaded workers, DEBUG off) for a benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path
    drainer: subprocess.Popen | None = None  # ``guichet bookings drainer``, if started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes (master and workers)."""
        import psutil

        try:
            master = psutil.Process(self.proc.pid)
            procs = [master, *master.children(recursive=True)]
            if self.drainer is not None:
                procs.append(psutil.Process(self.drainer.pid))
        except psutil.Error:
            return float("nan")
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def drainer_cpu_seconds(self) -> float:
        """CPU time used so far by the drainer process alone (0 without one)."""
        import psutil

        if self.drainer is None:
            return 0.0
        try:
            t = psutil.Process(self.drainer.pid).cpu_times()
        except psutil.Error:
            return float("nan")
        return t.user + t.system

    def stop(self, timeout: float = 10) -> None:
        for proc in (self.proc, self.drainer):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def gunicorn_bin() -> str:
    candidate = Path(sys.executable).with_name("gunicorn")
    return str(candidate) if candidate.exists() else "gunicorn"


def start(*, database_url: str, secret_key: str, workers: int = 4, threads: int = 8, port: int | None = None,
          timeout: float = 30.0, extra_env: dict[str, str] | None = None, drainer: bool = False,
          worker_class: str = "gthread") -> Server:
    """Run ``gunicorn guichet.wsgi`` with ``workers`` processes x ``threads`` threads, and
    ``guichet bookings drainer`` beside it if ``drainer`` (as a deployment on PostgreSQL does;
    without it one of the server's processes drains); wait until /healthz answers."""
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="guichet-bench-gunicorn-", suffix=".log")[1])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "guichet.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret_key,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
        # Plain HTTP on the loopback, as behind the TLS proxy of a deployment: no redirect to
        # https:// (the client sends its session cookie itself, so secure cookies change nothing).
        "SECURE_SSL_REDIRECT": "0",
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        # The server refuses to start without a field key (guichet/wsgi.py). Unless the caller
        # configured one (passed on above), it uses the development key, as the tests' own
        # process does: what a test writes, the server reads, and the other way round.
        **({} if os.environ.get("GUICHET_FIELD_KEY_FILE") or os.environ.get("GUICHET_FIELD_KEY")
           else {"GUICHET_INSECURE_DEV_KEY": "1"}),
        **(extra_env or {}),
    }
    cmd = [
        gunicorn_bin(), "guichet.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", worker_class,
        *(["--threads", str(threads)] if worker_class == "gthread" else ["--worker-connections", str(threads)]),
        "--backlog", "4096",
        "--keep-alive", "30",
        "--timeout", "60",
        "--graceful-timeout", "5",
        "--log-level", "warning",
    ]
    with log.open("wb") as out:  # gunicorn's and Django's messages (tracebacks of any 500)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Server(proc, port, log)
    if drainer:
        with log.open("ab") as out:
            server.drainer = subprocess.Popen(
                [sys.executable, "-m", "guichet.cli", "bookings", "drainer"], cwd=ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{server.log_tail()}")


def warm_up(server: Server, n: int = 64) -> None:
    """A few requests so every worker has imported the code and opened its database connection."""
    import concurrent.futures

    def hit(i):
        # /healthz, and the API without credentials (401): every worker has loaded the URL
        # configuration and the API's code before the rush, as earlier traffic would have.
        path = "/healthz" if i % 2 else "/api/v1/bookings/baskets/0"
        try:
            with urllib.request.urlopen(f"{server.url}{path}", timeout=5) as resp:  # noqa: S310
                resp.read()
        except OSError:
            pass

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(hit, range(n)))


def postgres_cpu_seconds(admin_url: str, database: str) -> float:
    """CPU time used so far by the PostgreSQL backends connected to ``database`` (same machine)."""
    import psutil
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])]
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total
