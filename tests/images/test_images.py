"""The container images are built here and run: as non-root, on a read-only root filesystem.

Loopback only: every container runs with `--network=host` and is addressed on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import morecantile
import numpy as np
import pytest
from PIL import Image

from landstack.catalog import get_layer

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]

Podman = Callable[..., subprocess.CompletedProcess[str]]
HARDENED = [
    "--network=host",
    "--read-only",
    "--tmpfs=/tmp:rw,size=512m,mode=1777",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
]


@pytest.fixture
def run_detached(podman: Podman) -> Iterator[Callable[..., str]]:
    """`run_detached(image, *args, env={...})` -> container name; removed at the end."""
    names: list[str] = []

    def _run(image: str, *args: str, env: dict[str, str] | None = None, mounts: tuple[str, ...] = ()) -> str:
        name = f"landstack-test-{uuid.uuid4().hex[:8]}"
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()] + [f"--volume={m}" for m in mounts]
        podman("run", "-d", "--name", name, *HARDENED, *flags, image, *args)
        names.append(name)
        return name

    yield _run
    for name in names:
        podman("rm", "-f", "-t", "5", name, check=False)


def _wait_for(url: str, podman: Podman, container: str, timeout_s: float = 180) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=3)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state in ("exited", "stopped"):
            break
        time.sleep(1)
    logs = podman("logs", container, check=False)
    pytest.fail(f"{url} never answered 200; container logs:\n{(logs.stdout + logs.stderr)[-3000:]}")


def _runs_as_non_root(podman: Podman, image: str, container: str | None = None) -> None:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "10001:10001", user
    if container:
        uid = podman("exec", container, "python3", "-c", "import os; print(os.getuid())").stdout.strip()
        assert uid == "10001"


def test_images_carry_oci_labels_and_healthchecks(built: Callable[[str], str], podman: Podman) -> None:
    for name, health in (
        ("stac-api", "/_mgmt/health"),
        ("model-server", "/v2/health/ready"),
        ("pipelines", None),
        ("tiler", "/_mgmt/health"),
    ):
        ref = built(name)
        labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", ref).stdout)
        assert labels["org.opencontainers.image.title"] == f"landstack-{name}"
        assert labels["org.opencontainers.image.version"] == ref.rsplit(":", 1)[1]
        assert labels["org.opencontainers.image.revision"]
        check = podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", ref).stdout
        assert (health in check) if health else check.strip() in ("null", "")
        # no compiler or package build tools in the final stage
        tools = podman("run", "--rm", "--network=none", "--entrypoint=sh", ref, "-c",
                       "command -v gcc cc make g++ || true").stdout.strip()  # fmt: skip
        assert tools == "", tools


def test_stac_api_image_serves_health_and_search(
    built: Callable[[str], str], podman: Podman, run_detached: Callable[..., str], port: Any, pgstac_up: None
) -> None:
    ref = built("stac-api")
    p = port()
    env = {
        "LANDSTACK_API_PORT": str(p),
        "LANDSTACK_API_DB_HOST": "127.0.0.1",
        "LANDSTACK_API_DB_PORT": "55432",
        "LANDSTACK_API_DB_USER": "postgres",
        "LANDSTACK_API_DB_PASSWORD": "postgres",
        "LANDSTACK_API_DB_NAME": "landstack",
    }
    name = run_detached(ref, env=env)
    base = f"http://127.0.0.1:{p}"
    health = _wait_for(f"{base}/_mgmt/health", podman, name)
    assert health.json()  # the database answered
    search = httpx.post(f"{base}/search", json={"limit": 1}, timeout=30)
    assert search.status_code == 200, search.text[:500]
    assert search.json()["type"] == "FeatureCollection"
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    _runs_as_non_root(podman, ref, name)


def _register_tiny_model(root: Path, register: Callable[[Path, str], dict[str, Any]]) -> dict[str, Any]:
    metadata = register(root, "tempcnn-image-test")
    # The container's user (10001) reads the bind-mounted store.
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return metadata


def test_model_server_image_loads_a_registered_model_and_infers(
    register_tiny_tempcnn: Callable[[Path, str], dict[str, Any]],
    built: Callable[[str], str],
    podman: Podman,
    run_detached: Callable[..., str],
    port: Any,
    tmp_path: Path,
) -> None:
    ref = built("model-server")
    store = tmp_path / "store"
    metadata = _register_tiny_model(store, register_tiny_tempcnn)
    p = port()
    env = {
        "LANDSTACK_MODEL_SERVER_MODEL_NAME": metadata["name"],
        "LANDSTACK_MODEL_SERVER_HTTP_PORT": str(p),
        "LANDSTACK_MODEL_SERVER_GRPC_PORT": str(port()),
        "LANDSTACK_MODEL_SERVER_TORCH_THREADS": "1",
    }
    # As the chart's InferenceService runs it: KServe's storage initializer has copied the storage
    # URI's registry version folder to /mnt/models, mounted read-only, and the args name it.
    version_folder = store / "models" / metadata["name"] / metadata["version"]
    name = run_detached(ref, "--model_dir=/mnt/models", env=env, mounts=(f"{version_folder}:/mnt/models:ro",))
    base = f"http://127.0.0.1:{p}"
    _wait_for(f"{base}/v2/health/ready", podman, name)
    x = np.random.default_rng(0).normal(size=(2, 12, 54)).astype(np.float32)
    body = {
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]
    }
    r = httpx.post(f"{base}/v2/models/{metadata['name']}/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text[:500]
    out = r.json()["outputs"][0]
    probs = np.asarray(out["data"], dtype=np.float64).reshape(out["shape"])
    assert probs.shape == (2, 11)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    _runs_as_non_root(podman, ref, name)


def test_pipelines_image_lists_steps_and_runs_one(
    built: Callable[[str], str], podman: Podman, tmp_path: Path
) -> None:
    ref = built("pipelines")
    _runs_as_non_root(podman, ref)
    listed = podman("run", "--rm", *HARDENED, ref, "step", "list")
    assert "synth-archive" in listed.stdout and "publish" in listed.stdout
    store, inputs = tmp_path / "store", tmp_path / "in"
    store.mkdir()
    inputs.mkdir()
    store.chmod(0o777)  # the container's user writes into the bind-mounted store
    request = {
        "bbox": [11.0, 48.0, 11.01, 48.008],
        "start": "2024-06-01",
        "end": "2024-06-06",
        "points_per_class": 2,
    }
    (inputs / "input.json").write_text(json.dumps(request))
    inputs.chmod(0o755)
    (inputs / "input.json").chmod(0o644)
    proc = podman(
        "run", "--rm", *HARDENED, "--env=LANDSTACK_STORE_URL=file:///store",
        f"--volume={store}:/store", f"--volume={inputs}:/var/run/landstack:ro",
        ref, "step", "run", "synth-archive", "--input", "/var/run/landstack/input.json",
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    output = json.loads(proc.stdout)
    assert output  # the step's output JSON
    written = sorted(p.relative_to(store).as_posix() for p in store.rglob("*.tif"))
    assert any(k.startswith("archive/synthetic/") for k in written), written
    assert any(p.name == "collection.json" for p in store.rglob("collection.json"))


LC = "clcplus-backbone-ras"


def _product_cogs() -> ModuleType:
    """The tiler tests' writer of small product COGs and their items."""
    path = REPO / "tests" / "services" / "tiler" / "product_cogs.py"
    spec = importlib.util.spec_from_file_location("landstack_test_image_product_cogs", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def published(pgstac_database: Callable[[str], str], tmp_path: Path) -> tuple[str, Path, dict[str, Any]]:
    """(database, store, item): a fresh pgstac with the catalogue and one land-cover item + COG."""
    from landstack.catalog.build import build_catalogue
    from landstack.pipelines.publish import PgstacTarget, publish
    from landstack.pipelines.settings import Settings

    dbname = pgstac_database("landstack_test_tiler_image")
    store = tmp_path / "store"
    build_catalogue(store / "catalog")
    items = _product_cogs().write_products(store, collections=(LC,), years=(2018,))
    pipe = Settings(store_url=store.as_uri(), local_dir=tmp_path / "local")
    target = PgstacTarget(f"postgresql://postgres:postgres@127.0.0.1:55432/{dbname}")
    try:
        report = publish(pipe.store(), target, settings=pipe)
    finally:
        target.close()
    assert report.ok, report.refused
    # The container's user (10001) reads the bind-mounted store.
    for path in [store, *store.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dbname, store, items[0]


def test_tiler_image_serves_health_web_map_and_a_tile(
    published: tuple[str, Path, dict[str, Any]],
    built: Callable[[str], str],
    podman: Podman,
    run_detached: Callable[..., str],
    port: Any,
) -> None:
    dbname, store, item = published
    ref = built("tiler")
    p = port()
    env = {
        "LANDSTACK_TILER_PORT": str(p),
        "LANDSTACK_TILER_DB_HOST": "127.0.0.1",
        "LANDSTACK_TILER_DB_PORT": "55432",
        "LANDSTACK_TILER_DB_USER": "postgres",
        "LANDSTACK_TILER_DB_PASSWORD": "postgres",
        "LANDSTACK_TILER_DB_NAME": dbname,
    }
    # The published hrefs are file:// URLs into the store: mount it read-only at the same path.
    name = run_detached(ref, env=env, mounts=(f"{store}:{store}:ro",))
    base = f"http://127.0.0.1:{p}"
    health = _wait_for(f"{base}/_mgmt/health", podman, name)
    assert health.json() == {"status": "ok", "database": "ok"}

    page = httpx.get(f"{base}/map", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "map/libs/leaflet/dist/leaflet.js" in page.text
    leaflet = httpx.get(f"{base}/map/libs/leaflet/dist/leaflet.js", timeout=30)
    assert leaflet.status_code == 200, leaflet.text[:300]
    assert "Leaflet 1.9.4" in leaflet.text[:300]  # the npm package's banner: Leaflet is in the image
    layers = httpx.get(f"{base}/map/layers.json", timeout=30).json()["layers"]
    assert [layer["id"] for layer in layers] == [LC]

    w, s, e, n = item["bbox"]
    t = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, 14)
    url = f"{base}/collections/{LC}/items/{item['id']}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png"
    r = httpx.get(url, params={"assets": get_layer(LC)[1].asset_key}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    found = {tuple(int(v) for v in px) for px in np.unique(img[img[..., 3] == 255][:, :3], axis=0)}
    _, layer = get_layer(LC)
    palette = {tuple(int(c.color[i : i + 2], 16) for i in (1, 3, 5)) for c in layer.classes if not c.nodata}
    assert len(found & palette) >= 5 and found <= palette, found  # the product's colours, from the COG

    assert podman("healthcheck", "run", name, check=False).returncode == 0
    assert json.loads(podman("inspect", name).stdout)[0]["HostConfig"]["ReadonlyRootfs"] is True
    _runs_as_non_root(podman, ref, name)
