"""`podman kube play` of the chart's rendered STAC API Deployment comes up ready.

The Deployment and its ConfigMap are rendered by helm with the locally built image
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
from collections.abc import Callable
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


def _for_podman(docs: list[dict[str, Any]], port: int) -> list[dict[str, Any]]:
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    config["data"]["LANDSTACK_API_PORT"] = str(port)
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True  # podman's port mappings need a bridge network; stay on loopback
    container = pod["containers"][0]
    container.pop("ports")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container[probe]["httpGet"]["port"] = port
    return [config, deployment]


def test_kube_play_of_the_rendered_stac_api_comes_up_ready(
    built: Callable[[str], str], podman: Podman, pgstac_up: None, port: Any, tmp_path: Path
) -> None:
    ref = built("stac-api")
    repository, tag = ref.rsplit(":", 1)
    suffix = uuid.uuid4().hex[:6]
    release, secret = f"kp{suffix}", f"landstack-test-pgstac-{suffix}"
    rendered = subprocess.run(
        [
            _helm(), "template", release, str(CHART), "--namespace", "landstack",
            "--set", f"stacApi.image.repository={repository}", "--set", f"stacApi.image.tag={tag}",
            "--set", "stacApi.image.pullPolicy=Never", "--set", "stacApi.replicas=1",
            "--set", "database.internal.enabled=false", "--set", "database.host=127.0.0.1",
            "--set", "database.port=55432", "--set", "database.user=postgres",
            "--set", f"database.existingSecret={secret}", "--set", "stacApi.auth.existingSecret=",
            "--show-only", "templates/stac-api/configmap.yaml",
            "--show-only", "templates/stac-api/deployment.yaml",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Never" and container["image"] == ref
    p = port()
    manifest = tmp_path / "stac-api.yaml"
    manifest.write_text(yaml.safe_dump_all(_for_podman(docs, p)))
    # podman resolves secretKeyRef from a podman secret holding the Secret's data (base64 values).
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({"password": base64.b64encode(b"postgres").decode()}))
    podman("secret", "create", secret, str(secret_file))
    try:
        podman("kube", "play", str(manifest))
        pod = f"{deployment['metadata']['name']}-pod-0"
        ctr = f"{pod}-stac-api"
        base = f"http://127.0.0.1:{p}"
        probes = {
            container[k]["httpGet"]["path"] for k in ("startupProbe", "readinessProbe", "livenessProbe")
        }
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
        search = httpx.post(f"{base}/search", json={"limit": 1}, timeout=30)
        assert search.status_code == 200 and search.json()["type"] == "FeatureCollection"
    finally:
        podman("kube", "down", str(manifest), check=False)
        podman("secret", "rm", secret, check=False)
