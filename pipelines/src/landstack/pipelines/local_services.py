"""Local services for the embedded default and the tests: PostgreSQL+pgstac and a moto S3 server.

Everything lives in a project-local folder (settings.local_dir): the PostgreSQL cluster, pid files
and logs. PostgreSQL refuses to run as root, so as root the cluster is initialised and run as the
`postgres` user on a folder that user owns. Only loopback addresses are used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from landstack.pipelines.errors import ConfigError, PipelineError
from landstack.pipelines.settings import Settings, get_settings

_PG_BIN_CANDIDATES = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


class ServiceError(PipelineError):
    """A local service could not be started or stopped."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    address: str


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_for_port(host: str, port: int, seconds: float, what: str, log: Path | None = None) -> None:
    """Block until host:port accepts connections, or raise naming the service and its log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.2)
    hint = f"; see {log}" if log else ""
    raise ServiceError(f"{what} did not start listening on {host}:{port} within {seconds:.0f} s{hint}")


def _pg_bin(tool: str) -> str:
    for d in _PG_BIN_CANDIDATES:
        if (Path(d) / tool).exists():
            return str(Path(d) / tool)
    found = shutil.which(tool)
    if not found:
        raise ConfigError(
            f"PostgreSQL tool {tool!r} not found; run 'make setup' (installs postgresql-15-postgis-3)"
        )
    return found


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", str(path)], check=True)


def _pg_root(local_dir: Path) -> Path:
    """<local_dir>/pg, unless the `postgres` user (as which root runs the server) cannot reach it.

    A checkout under a root-only folder (e.g. /root) is not traversable by `postgres`; the cluster
    then lives in a folder named after the checkout under the system's temporary directory.
    """
    root = local_dir / "pg"
    if os.geteuid() != 0:
        return root
    local_dir.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(local_dir)], capture_output=True
    )
    if probe.returncode == 0:
        return root
    digest = hashlib.sha256(str(local_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"landstack-pg-{digest}"


class PostgresService:
    """A PostgreSQL cluster in <local_dir>/pg with pgstac installed in the configured database."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.root = _pg_root(settings.local_dir)
        self.data = self.root / "data"
        self.sock = self.root / "run"
        self.log = self.root / "postgres.log"

    def status(self) -> ServiceStatus:
        return ServiceStatus(
            "postgres", port_open(self.s.pg_host, self.s.pg_port), f"{self.s.pg_host}:{self.s.pg_port}"
        )

    def up(self) -> None:
        if not self.status().running:
            self._init()
            self._start()
        self._create_database()
        self._migrate()

    def _init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(parents=True, exist_ok=True)
        _chown_postgres(self.root)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.s.pg_password.get_secret_value() + "\n")
        _chown_postgres(pwfile)
        cmd = [
            _pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            self.s.pg_user,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
        proc = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
        pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise ServiceError(f"initdb failed for {self.data}: {proc.stderr.strip()}")
        # Tuned for a small machine running tests and benchmarks, not for production.
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(
                "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 512MB\nwork_mem = 32MB\nmax_connections = 200\n"
            )

    def _start(self) -> None:
        if self.log.exists():
            _chown_postgres(self.log)
        opts = f"-p {self.s.pg_port} -c listen_addresses={self.s.pg_host} -k {self.sock}"
        cmd = [
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        ]
        proc = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServiceError(
                f"PostgreSQL did not start: {proc.stderr.strip() or proc.stdout.strip()}; see {self.log}"
            )
        wait_for_port(self.s.pg_host, self.s.pg_port, 30, "PostgreSQL", self.log)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self.s.pg_password.get_secret_value()}
        cmd = [
            "psql",
            "-h",
            self.s.pg_host,
            "-p",
            str(self.s.pg_port),
            "-U",
            self.s.pg_user,
            "-d",
            database,
            "-tAc",
            sql,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise ServiceError(f"psql failed ({sql!r}): {proc.stderr.strip()}")
        return proc.stdout.strip()

    def _create_database(self) -> None:
        db = self.s.pg_database
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
            self._psql(f'CREATE DATABASE "{db}"')

    def _migrate(self) -> None:
        pypgstac = Path(sys.executable).with_name("pypgstac")
        cmd = [str(pypgstac) if pypgstac.exists() else "pypgstac", "migrate", "--dsn", self.s.pg_dsn]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServiceError(f"pypgstac migrate failed: {proc.stderr.strip()[-2000:]}")

    def down(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            return
        cmd = [_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)


class ProcessService:
    """A background process with a pid file and a log under <local_dir>/run."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        host: str,
        port: int,
        settings: Settings,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name, self.cmd, self.host, self.port, self.env = name, cmd, host, port, env
        run = settings.local_dir / "run"
        self.pidfile = run / f"{name}.pid"
        self.log = settings.local_dir / "logs" / f"{name}.log"

    def status(self) -> ServiceStatus:
        return ServiceStatus(self.name, port_open(self.host, self.port), f"{self.host}:{self.port}")

    def up(self, wait_seconds: float = 30) -> None:
        if self.status().running:
            return
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(self.env or {})},
            )
        self.pidfile.write_text(str(proc.pid))
        try:
            wait_for_port(self.host, self.port, wait_seconds, self.name, self.log)
        except ServiceError:
            self.down()
            raise

    def down(self) -> None:
        if not self.pidfile.exists():
            return
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            pid = int(self.pidfile.read_text().strip())
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)


MOTO_PORT = 55900
STAC_API_PORT = 55081
TILER_PORT = 55082
MODEL_SERVER_PORT = 55090
MAP_PATH = "/map"


def moto_service(settings: Settings, port: int = MOTO_PORT) -> ProcessService:
    """The moto S3 server on 127.0.0.1 used by tests that exercise s3://."""
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe) if exe.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(port)]
    return ProcessService("moto", cmd, "127.0.0.1", port, settings)


def stac_api_service(settings: Settings, port: int = STAC_API_PORT) -> ProcessService:
    """The STAC API (landstack.stac_api) on 127.0.0.1:port over the configured pgstac database.

    With LANDSTACK_STAC_API_TOKEN set, that token may write (only its sha256 is handed over);
    otherwise the API is read-only and publishing goes straight into pgstac.
    """
    env = {
        "LANDSTACK_API_HOST": "127.0.0.1",
        "LANDSTACK_API_PORT": str(port),
        "LANDSTACK_API_DB_HOST": settings.pg_host,
        "LANDSTACK_API_DB_PORT": str(settings.pg_port),
        "LANDSTACK_API_DB_USER": settings.pg_user,
        "LANDSTACK_API_DB_PASSWORD": settings.pg_password.get_secret_value(),
        "LANDSTACK_API_DB_NAME": settings.pg_database,
        # Asset hrefs answered as http://127.0.0.1:port/store/... (read-only, range requests) and
        # product items/collections linked to the local tiler's tiles.
        "LANDSTACK_API_STORE_URL": settings.store_url,
        "LANDSTACK_API_SERVE_STORE": "true",
        "LANDSTACK_API_S3_REGION": settings.s3_region,
        "LANDSTACK_API_TILER_URL": f"http://127.0.0.1:{TILER_PORT}",
        **_s3_env("LANDSTACK_API_", settings),
    }
    if settings.stac_api_token is not None:
        digest = hashlib.sha256(settings.stac_api_token.get_secret_value().encode()).hexdigest()
        env["LANDSTACK_API_KEYS"] = json.dumps(
            [{"name": "publisher", "sha256": digest, "scopes": ["read", "write"]}]
        )
    cmd = [sys.executable, "-m", "landstack.stac_api"]
    return ProcessService("stac-api", cmd, "127.0.0.1", port, settings, env=env)


def _s3_env(prefix: str, settings: Settings) -> dict[str, str]:
    env = {}
    if settings.s3_endpoint_url:
        env[f"{prefix}S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        env[f"{prefix}S3_ACCESS_KEY_ID"] = settings.s3_access_key_id.get_secret_value()
        env[f"{prefix}S3_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return env


def tiler_service(
    settings: Settings, port: int = TILER_PORT, api_port: int = STAC_API_PORT
) -> ProcessService:
    """The tiler and web map (landstack.tiler) on 127.0.0.1:port over the configured pgstac database."""
    env = {
        "LANDSTACK_TILER_HOST": "127.0.0.1",
        "LANDSTACK_TILER_PORT": str(port),
        "LANDSTACK_TILER_DB_HOST": settings.pg_host,
        "LANDSTACK_TILER_DB_PORT": str(settings.pg_port),
        "LANDSTACK_TILER_DB_USER": settings.pg_user,
        "LANDSTACK_TILER_DB_PASSWORD": settings.pg_password.get_secret_value(),
        "LANDSTACK_TILER_DB_NAME": settings.pg_database,
        "LANDSTACK_TILER_API_URL": f"http://127.0.0.1:{api_port}",
        "LANDSTACK_TILER_S3_REGION": settings.s3_region,
    }
    checkout = _checkout_of(settings)
    if checkout is not None:
        env["LANDSTACK_TILER_WEB_LIBS_DIR"] = str(checkout / ".tools" / "web" / "node_modules")
    env.update(_s3_env("LANDSTACK_TILER_", settings))
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        # titiler's tile reads take S3 credentials from GDAL's process environment
        env["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id.get_secret_value()
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    cmd = [sys.executable, "-m", "landstack.tiler"]
    return ProcessService("tiler", cmd, "127.0.0.1", port, settings, env=env)


def model_server_service(
    settings: Settings, models: list[str], port: int = MODEL_SERVER_PORT
) -> ProcessService:
    """A KServe model server (landstack.model_server) on 127.0.0.1:port hosting registered `models`
    (``name[:version]``) from the object store's registry, side by side."""
    env = {
        "LANDSTACK_MODEL_SERVER_REGISTRY_URL": settings.store_url,
        "LANDSTACK_MODEL_SERVER_MODELS": ",".join(models),
        "LANDSTACK_MODEL_SERVER_HTTP_PORT": str(port),
        "LANDSTACK_MODEL_SERVER_GRPC_PORT": str(port + 1),
        "LANDSTACK_MODEL_SERVER_ENABLE_GRPC": "false",
        "LANDSTACK_MODEL_SERVER_S3_REGION": settings.s3_region,
        **_s3_env("LANDSTACK_MODEL_SERVER_", settings),
    }
    cmd = [sys.executable, "-m", "landstack.model_server"]
    return ProcessService("model-server", cmd, "127.0.0.1", port, settings, env=env)


def wait_until_ready(url: str, seconds: float, what: str, log: Path | None = None) -> None:
    """Block until `url` answers 200 (a readiness endpoint), or raise naming the service and its log."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    hint = f"; see {log}" if log else ""
    raise ServiceError(f"{what} was not ready at {url} within {seconds:.0f} s{hint}")


def _checkout_of(settings: Settings) -> Path | None:
    """The source checkout holding <local_dir> (where `.tools/web` has the web map's npm packages)."""
    parent = settings.local_dir.resolve().parent
    return parent if (parent / "pyproject.toml").is_file() else None


def map_url(port: int = TILER_PORT) -> str:
    """Where the local web map is."""
    return f"http://127.0.0.1:{port}{MAP_PATH}"


def up(settings: Settings | None = None) -> list[ServiceStatus]:
    """Start PostgreSQL+pgstac, moto and the tiler with its web map (idempotent)."""
    s = settings or get_settings()
    pg = PostgresService(s)
    pg.up()
    moto = moto_service(s)
    moto.up()
    tiler = tiler_service(s)
    tiler.up(wait_seconds=60)
    return [pg.status(), moto.status(), tiler.status()]


def down(settings: Settings | None = None) -> None:
    """Stop every local service started by `up` (and the STAC API started by the demo)."""
    s = settings or get_settings()
    for name in ("model-server", "stac-api", "tiler", "moto"):
        ProcessService(name, [], "127.0.0.1", 0, s).down()
    PostgresService(s).down()


def status(settings: Settings | None = None) -> list[ServiceStatus]:
    s = settings or get_settings()
    return [
        PostgresService(s).status(),
        moto_service(s).status(),
        stac_api_service(s).status(),
        tiler_service(s).status(),
    ]
