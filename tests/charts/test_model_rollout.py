"""The chart wires the training workflows to its InferenceServices: each training workflow's
`inference-service` and `model-name` defaults are its family's InferenceService and model, and an
InferenceService can serve a release (every production unit's model and the fallback) as the
training workflow's rollout leaves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landstack"
# training workflow -> the modelServers family it rolls out to by default
TRAINING = {"landstack-training": "tempcnn", "landstack-training-patches": "unet"}
SERVE = [
    "--set", "modelServers.tempcnn.enabled=true",
    "--set-string", "modelServers.tempcnn.model.version=3f9c2a1b7d4e",
    "--set", "modelServers.unet.enabled=true",
    "--set-string", "modelServers.unet.model.release=0123456789ab",
]  # fmt: skip


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _defaults(doc: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p.get("value") for p in doc["spec"]["arguments"]["parameters"]}


def test_training_workflows_roll_out_to_the_chart_s_inference_services(render: Any) -> None:
    for args in ([], ["-f", str(CHART / "values-production.yaml"), *SERVE]):
        docs = render(*args)
        templates = _by_kind(docs, "WorkflowTemplate")
        for workflow, family in TRAINING.items():
            defaults = _defaults(templates[workflow])
            assert defaults["inference-service"] == f"rel-landstack-model-{family}"
            model = {"tempcnn": "tempcnn", "unet": "unet-imd"}[family]
            assert defaults["model-name"] == model
    isvcs = _by_kind(render(*SERVE), "InferenceService")
    templates = _by_kind(render(*SERVE), "WorkflowTemplate")
    for workflow in TRAINING:
        isvc = isvcs[_defaults(templates[workflow])["inference-service"]]
        container = isvc["spec"]["predictor"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["LANDSTACK_MODEL_SERVER_MODEL_NAME"] == _defaults(templates[workflow])["model-name"]
        assert container["env"][0]["name"] == "STORAGE_URI"  # what the rollout's JSON patch tests
    # the production workflow knows no unit by default
    assert _defaults(templates["landstack-production"])["units"] == ""


def test_an_inference_service_serves_a_release(render: Any) -> None:
    isvcs = _by_kind(render("--set", "global.objectStore.url=s3://bucket/root/", *SERVE), "InferenceService")
    unet = isvcs["rel-landstack-model-unet"]
    assert unet["spec"]["predictor"]["containers"][0]["env"][0] == {
        "name": "STORAGE_URI",
        "value": "s3://bucket/root/releases/unet-imd/0123456789ab/",
    }
    assert unet["metadata"]["annotations"]["landstack.io/model-version"] == "0123456789ab"
    tempcnn = isvcs["rel-landstack-model-tempcnn"]
    assert tempcnn["spec"]["predictor"]["containers"][0]["env"][0]["value"] == (
        "s3://bucket/root/models/tempcnn/3f9c2a1b7d4e/"
    )
