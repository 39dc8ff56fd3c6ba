"""`podman kube play` of the chart's rendered STAC API and tiler Deployments comes up ready.

Each Deployment and its ConfigMap are rendered by helm with the locally built image
(`imagePullPolicy: Never`) and the local PostgreSQL+pgstac as the external database; the only
changes for podman are host networking (loopback only) and numeric probe ports. The pod runs with the
chart's security contexts (non-root, read-only root filesystem, /tmp emptyDir).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landstack"
Podman = Callable[..., subprocess.CompletedProcess[str]]


def _helm() -> str:
    found = shutil.which("helm") or str(REPO / ".tools" / "bin" / "helm")
    if not Path(found).exists():
        pytest.skip("helm is not installed: run 'make setup'")
    return found


def _for_podman(docs: list[dict[str, Any]], port: int, port_setting: str) -> list[dict[str, Any]]:
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    config["data"][port_setting] = str(port)
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True  # podman's port mappings need a bridge network; stay on loopback
    container = pod["containers"][0]
    container.pop("ports")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container[probe]["httpGet"]["port"] = port
    return [config, deployment]


def _render(component: str, values: str, ref: str, secret: str, *extra: str) -> list[dict[str, Any]]:
    """The component's ConfigMap and Deployment, on the local image and the local pgstac."""
    repository, tag = ref.rsplit(":", 1)
    sets = [
        f"{values}.image.repository={repository}", f"{values}.image.tag={tag}",
        f"{values}.image.pullPolicy=Never", f"{values}.replicas=1",
        "database.internal.enabled=false", "database.host=127.0.0.1", "database.port=55432",
        "database.user=postgres", f"database.existingSecret={secret}", *extra,
    ]  # fmt: skip
    release = f"kp{uuid.uuid4().hex[:6]}"
    args = [_helm(), "template", release, str(CHART), "--namespace", "landstack"]
    args += [a for s in sets for a in ("--set", s)]
    args += [
        a for f in ("configmap", "deployment") for a in ("--show-only", f"templates/{component}/{f}.yaml")
    ]
    rendered = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    container = _container(docs)
    assert container["imagePullPolicy"] == "Never" and container["image"] == ref
    return docs


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Deployment")


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    return container


def _probe_paths(docs: list[dict[str, Any]]) -> set[str]:
    c = _container(docs)
    return {c[k]["httpGet"]["path"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}


@contextmanager
def _played(
    docs: list[dict[str, Any]], podman: Podman, secret: str, port: int, port_setting: str, tmp_path: Path
) -> Iterator[str]:
    """Play the rendered pod until every probe answers 200; yields its container's name."""
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump_all(_for_podman(docs, port, port_setting)))
    # podman resolves secretKeyRef from a podman secret holding the Secret's data (base64 values).
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({"password": base64.b64encode(b"postgres").decode()}))
    podman("secret", "create", secret, str(secret_file))
    try:
        podman("kube", "play", str(manifest))
        ctr = f"{_deployment(docs)['metadata']['name']}-pod-0-{_container(docs)['name']}"
        base, probes = f"http://127.0.0.1:{port}", _probe_paths(docs)
        deadline, ready = time.monotonic() + 180, False
        while time.monotonic() < deadline and not ready:
            try:
                ready = all(httpx.get(base + path, timeout=3).status_code == 200 for path in probes)
            except httpx.HTTPError:
                ready = False
            if not ready:
                time.sleep(1)
        logs = podman("logs", ctr, check=False)
        assert ready, (
            f"probes {sorted(probes)} never all answered 200:\n{(logs.stdout + logs.stderr)[-3000:]}"
        )
        state = json.loads(podman("inspect", ctr).stdout)[0]
        assert state["State"]["Status"] == "running"
        assert state["HostConfig"]["ReadonlyRootfs"] is True
        uid = podman("exec", ctr, "python3", "-c", "import os; print(os.getuid())").stdout.strip()
        assert uid == "10001"
        yield ctr
    finally:
        podman("kube", "down", str(manifest), check=False)
        podman("secret", "rm", secret, check=False)


def test_kube_play_of_the_rendered_stac_api_comes_up_ready(
    built: Callable[[str], str], podman: Podman, pgstac_up: None, port: Any, tmp_path: Path
) -> None:
    secret = f"landstack-test-pgstac-{uuid.uuid4().hex[:6]}"
    docs = _render("stac-api", "stacApi", built("stac-api"), secret, "stacApi.auth.existingSecret=")
    p = port()
    with _played(docs, podman, secret, p, "LANDSTACK_API_PORT", tmp_path):
        search = httpx.post(f"http://127.0.0.1:{p}/search", json={"limit": 1}, timeout=30)
        assert search.status_code == 200 and search.json()["type"] == "FeatureCollection"


def test_kube_play_of_the_rendered_tiler_comes_up_ready(
    built: Callable[[str], str], podman: Podman, pgstac_up: None, port: Any, tmp_path: Path
) -> None:
    secret = f"landstack-test-pgstac-{uuid.uuid4().hex[:6]}"
    # the probes read no object, so no object-store Secret
    docs = _render("tiler", "tiler", built("tiler"), secret, "global.objectStore.existingSecret=")
    assert _probe_paths(docs) == {"/_mgmt/ping", "/_mgmt/health"}
    p = port()
    with _played(docs, podman, secret, p, "LANDSTACK_TILER_PORT", tmp_path):
        page = httpx.get(f"http://127.0.0.1:{p}/map/libs/leaflet/dist/leaflet.js", timeout=30)
        assert page.status_code == 200 and "Leaflet 1.9.4" in page.text[:300]
