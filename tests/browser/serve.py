"""Start the real app under uvicorn on a free port for a browser test module (one copy for every module)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(var: Path) -> dict[str, str]:
    """The environment of a server on a fresh SQLite file in var, with the embedded job worker."""
    env = {
        **os.environ,
        "SHEQUN_ENV": "test",
        "SHEQUN_VAR_DIR": str(var),
        "SHEQUN_JOBS_MODE": "embedded",
        "SHEQUN_DATABASE_URL": f"sqlite:///{var / 'shequn.db'}",
    }
    env.pop("SHEQUN_REDIS_URL", None)
    return env


@contextmanager
def serve(env: dict[str, str], var: Path) -> Iterator[str]:
    """uvicorn serving shequn.app with env; yields its base URL once /healthz answers, stops it afterwards."""
    port = free_port()
    log_path = var / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "shequn.app:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("server did not start: " + log_path.read_text()) from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
