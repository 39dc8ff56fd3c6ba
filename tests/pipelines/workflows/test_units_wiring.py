"""Production units through the rendered workflows: the production workflow hands its `units`
parameters to predict, and the training workflows release every registered model and roll the
release out.

The task arguments of the committed YAML are substituted with the runner's own expression code,
and the resulting step input is validated by the step's input model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from landstack.pipelines import workflows
from landstack.pipelines.runner.expressions import substitute
from landstack.pipelines.steps.production import PredictInput


def _main_and_templates(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    doc = workflows.load(name)
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    defaults = {p["name"]: p.get("value") for p in doc["spec"]["arguments"]["parameters"]}
    return defaults, templates


def _predict_input(params: dict[str, str]) -> PredictInput:
    defaults, templates = _main_and_templates("landstack-production")
    predict = next(t for t in templates["tile"]["dag"]["tasks"] if t["name"] == "predict")
    (arg,) = predict["arguments"]["parameters"]
    scope: dict[str, Any] = {f"workflow.parameters.{k}": v for k, v in {**defaults, **params}.items()}
    scope["inputs.parameters.tile"] = "E48N27-25K-r1c2"
    return PredictInput.model_validate(json.loads(substitute(arg["value"], scope)))


def test_production_passes_units_to_predict() -> None:
    defaults, _ = _main_and_templates("landstack-production")
    assert (defaults["units"], defaults["unit-property"], defaults["unit-buffer-m"]) == ("", "unit", "10000")
    inp = _predict_input(
        {
            "source": "http://127.0.0.1:1/stac",
            "units": "s3://bucket/units/units.geojson",
            "unit-property": "code",
            "unit-buffer-m": "2500",
        }
    )
    assert inp.units == "s3://bucket/units/units.geojson"
    assert inp.unit_property == "code" and inp.unit_buffer_m == 2500.0


def test_production_without_units_predicts_with_one_model_per_family() -> None:
    inp = _predict_input({"source": "http://127.0.0.1:1/stac"})
    assert not inp.units  # predict treats an empty URL as no units
    assert inp.unit_buffer_m == PredictInput.model_fields["unit_buffer_m"].default


@pytest.mark.parametrize("name", ["landstack-training", "landstack-training-patches"])
def test_training_releases_every_registered_model_and_rolls_the_release_out(name: str) -> None:
    _, templates = _main_and_templates(name)
    tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    assert tasks["release"]["depends"] == "register" and tasks["rollout"]["depends"] == "release"
    assert "targets_met" in tasks["release"]["when"] and "== true" in tasks["release"]["when"]
    (arg,) = tasks["release"]["arguments"]["parameters"]
    registered = [{"name": "tempcnn-r1c1", "version": "a"}, {"name": "tempcnn-fallback", "version": "b"}]
    scope = {
        "workflow.parameters.model-name": "tempcnn",
        "workflow.parameters.registry-url": "s3://bucket/root",
        "tasks.register.outputs.result": json.dumps(registered),
    }
    doc = json.loads(substitute(arg["value"], scope))
    assert doc == {"name": "tempcnn", "registered": registered, "registry_url": "s3://bucket/root"}
    release_out = {
        "storage_uri": "s3://bucket/root/releases/tempcnn/0123456789ab/",
        "version": "0123456789ab",
    }
    rollout_args = {
        p["name"]: substitute(p["value"], {"tasks.release.outputs.result": json.dumps(release_out)})
        for p in tasks["rollout"]["arguments"]["parameters"]
    }
    assert rollout_args == {"storage-uri": release_out["storage_uri"], "version": release_out["version"]}
    assert "{{inputs.parameters.storage-uri}}" in templates["rollout"]["resource"]["manifest"]
