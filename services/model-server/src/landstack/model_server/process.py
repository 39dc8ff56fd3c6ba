"""Start `python -m landstack.model_server` as a child process on free loopback ports and wait for it.

For benchmarks, tests and local runs. Does not import KServe (a process that imported KServe
cannot import tritonclient.grpc), only the standard library and httpx. The server binds every
interface; only 127.0.0.1 is ever used to talk to it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from landstack.model_server.errors import ModelServerError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedProcess:
    """A running model-server process and its loopback addresses."""

    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextmanager
def serve(
    env: dict[str, str], log: Path, args: list[str] | None = None, timeout_s: float = 120
) -> Iterator[ServedProcess]:
    """Run a model server with LANDSTACK_MODEL_SERVER_* `env` (added to os.environ) until the block ends."""
    http_port, grpc_port = free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "landstack.model_server",
        f"--http_port={http_port}",
        f"--grpc_port={grpc_port}",
        *(args or []),
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    served = ServedProcess(proc, http_port, grpc_port, log)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise ModelServerError(f"model server exited with {proc.returncode}: {served.log_tail()}")
            try:
                if httpx.get(f"{served.url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ModelServerError(f"model server not ready after {timeout_s} s: {served.log_tail()}")
            time.sleep(0.3)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
