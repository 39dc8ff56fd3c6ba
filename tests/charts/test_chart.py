"""The Helm chart lints, renders, and every rendered manifest validates against its schema."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landstack"
SCHEMA_FOR_KIND = {
    "Deployment": "deployment-apps-v1.json",
    "Service": "service-v1.json",
    "HorizontalPodAutoscaler": "horizontalpodautoscaler-autoscaling-v2.json",
    "PodDisruptionBudget": "poddisruptionbudget-policy-v1.json",
    "Ingress": "ingress-networking-v1.json",
    "Job": "job-batch-v1.json",
}


def _helm() -> str:
    helm = shutil.which("helm") or str(REPO / ".tools" / "bin" / "helm")
    if not Path(helm).exists():
        pytest.skip("helm is not installed: run 'make setup' (installs helm into .tools/bin)")
    return helm


def _render(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [_helm(), "template", "rel", str(CHART), *args], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_helm_lint() -> None:
    proc = subprocess.run([_helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_render_validates(schemas: ModuleType) -> None:
    docs = _render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("InferenceService") == 3
    assert {"Deployment", "Service", "PodDisruptionBudget", "Job"} <= set(kinds)
    kserve = schemas.kserve_validator()
    for doc in docs:
        if doc["kind"] == "InferenceService":
            errors = [e.message for e in kserve.iter_errors(doc)]
        else:
            errors = [e.message for e in schemas.k8s_validator(SCHEMA_FOR_KIND[doc["kind"]]).iter_errors(doc)]
        assert errors == [], (doc["kind"], doc["metadata"]["name"], errors)


def test_every_optional_template_validates(schemas: ModuleType) -> None:
    docs = _render(
        "--set",
        "stacApi.autoscaling.enabled=true",
        "--set",
        "stacApi.ingress.enabled=true",
        "--set",
        "stacApi.ingress.tlsSecret=stac-tls",
        "--set",
        "modelServers.unet.enabled=false",
    )
    kinds = [d["kind"] for d in docs]
    assert "HorizontalPodAutoscaler" in kinds and "Ingress" in kinds and kinds.count("InferenceService") == 2
    for doc in docs:
        if doc["kind"] in SCHEMA_FOR_KIND:
            assert list(schemas.k8s_validator(SCHEMA_FOR_KIND[doc["kind"]]).iter_errors(doc)) == []
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns the replica count


def test_settings_reach_the_containers() -> None:
    docs = _render(
        "--set",
        "global.objectStore.url=s3://bucket/prefix",
        "--set",
        "global.objectStore.endpointUrl=http://minio:9000",
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LANDSTACK_STORE_URL"] == "s3://bucket/prefix"
    assert env["LANDSTACK_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["LANDSTACK_API_DB_HOST"] == "landstack-pgstac"
    isvc = next(d for d in docs if d["kind"] == "InferenceService" and "tempcnn" in d["metadata"]["name"])
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["LANDSTACK_MODEL_SERVER_REGISTRY_URL"] == "s3://bucket/prefix"
    assert (env["LANDSTACK_MODEL_SERVER_MODEL_NAME"], env["LANDSTACK_MODEL_SERVER_MODEL_VERSION"]) == (
        "tempcnn",
        "latest",
    )


def test_values_schema_rejects_bad_values() -> None:
    proc = subprocess.run(
        [_helm(), "template", "rel", str(CHART), "--set", "stacApi.replicas=-1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "replicas" in proc.stderr
    proc = subprocess.run(
        [_helm(), "template", "rel", str(CHART), "--set", "stacApi.bogus=1"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "bogus" in proc.stderr
