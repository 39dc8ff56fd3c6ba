"""The committed rendered YAML of each Hera workflow: no drift, valid for Argo, runnable locally."""

from __future__ import annotations

from types import ModuleType

import pytest
import yaml

from landstack.pipelines import workflows
from landstack.pipelines.steps import list_steps

NAMES = workflows.names()


def test_every_workflow_has_its_module_and_yaml() -> None:
    assert NAMES == [
        "landstack-production",
        "landstack-retraining-trigger",
        "landstack-training",
        "landstack-training-patches",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_committed_yaml_matches_the_module(name: str) -> None:
    committed = workflows.rendered_path(name).read_text()
    assert committed == workflows.render(name), (
        f"{workflows.rendered_path(name)} is out of date: run `landstack workflow render` and commit it"
    )


@pytest.mark.parametrize("version", ["v3.7.18", "v4.1.2"])
@pytest.mark.parametrize("name", NAMES)
def test_valid_against_the_argo_schema(name: str, version: str, schemas: ModuleType) -> None:
    doc = yaml.safe_load(workflows.rendered_path(name).read_text())
    errors = list(schemas.argo_validator(version).iter_errors(doc))
    details = [(list(c.path), c.message[:160]) for e in errors for c in (e.context or [e])][:5]
    assert not errors, details


def _containers(doc: dict) -> list[dict]:
    spec = doc["spec"].get("workflowSpec", doc["spec"])
    return [t for t in spec["templates"] if "container" in t]


@pytest.mark.parametrize("name", NAMES)
def test_every_container_runs_a_registered_step_securely(name: str) -> None:
    doc = workflows.load(name)
    known = {s.name for s in list_steps()}
    for t in _containers(doc):
        c = t["container"]
        assert c["command"] == ["landstack"]
        assert c["args"][:2] == ["step", "run"]
        assert c["args"][2] in known, c["args"][2]
        assert c["image"] == "{{workflow.parameters.image}}"
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert int(t["retryStrategy"]["limit"]) >= 1
        assert int(t["activeDeadlineSeconds"]) > 0
        assert "nvidia.com/gpu" not in str(c["resources"])  # GPUs only through predict's podSpecPatch
    spec = doc["spec"].get("workflowSpec", doc["spec"])
    assert spec["securityContext"]["runAsNonRoot"]
    assert spec["serviceAccountName"] == "landstack-workflows"


@pytest.mark.parametrize("name", ["landstack-training", "landstack-training-patches"])
def test_training_rolls_out_only_when_targets_are_met(name: str) -> None:
    main = next(t for t in workflows.load(name)["spec"]["templates"] if t["name"] == "main")
    dag = {t["name"]: t for t in main["dag"]["tasks"]}
    for gated in ("register", "rollout"):
        assert "targets_met" in dag[gated]["when"] and "== true" in dag[gated]["when"]
    assert "!= true" in dag["report"]["when"]
    assert "withParam" in dag["train"] or "withItems" in dag["train"]
