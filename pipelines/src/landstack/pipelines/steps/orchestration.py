"""Orchestration steps: detect new Sentinel-2 data, submit a workflow (the retraining trigger)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from landstack.pipelines.steps.registry import StepInput, StepOutput, current_store, step


class DetectNewInput(StepInput):
    source: str = Field(description="Sentinel-2 STAC API URL")
    collections: list[str] = Field(["sentinel-2*"], description="collection id patterns (fnmatch)")
    max_items: int = Field(100_000, gt=0, description="most new items read per collection and run")


class DetectNewOutput(StepOutput):
    new: bool
    changes: list[str]
    collection: str | None
    year: int | None
    pending_state: str | None = Field(description="state to commit once training was submitted")


@step("detect-new", DetectNewInput, DetectNewOutput, cached=False)
def detect_new(inp: DetectNewInput) -> DetectNewOutput:
    """Look for new collections, processing baselines or complete reference years since the last look."""
    from landstack.pipelines import trigger

    store = current_store()
    det = trigger.detect(store, inp.source, inp.collections, max_items=inp.max_items)
    return DetectNewOutput(
        new=det.new,
        changes=det.changes,
        collection=det.collection,
        year=det.year,
        pending_state=store.href(trigger.PENDING_KEY) if det.new else None,
    )


class SubmitInput(StepInput):
    workflow: str = Field(description="WorkflowTemplate name, e.g. landstack-training")
    parameters: dict[str, Any] = Field(default_factory=dict, description="workflow parameters")
    reason: list[str] = Field(default_factory=list, description="why (the detected changes)")
    source: str | None = None
    labels: str | None = None
    collection: str | None = None
    year: int | None = None
    pending_state: str | None = Field(None, description="trigger state to commit after submitting")


class SubmitOutput(StepOutput):
    workflow: str
    backend: str
    run: str
    record: str


@step("submit-workflow", SubmitInput, SubmitOutput, cached=False)
def submit_workflow(inp: SubmitInput) -> SubmitOutput:
    """Submit a workflow (Argo Server API or the local runner) and commit the trigger's state."""
    from landstack.pipelines import submission, trigger
    from landstack.pipelines.settings import get_settings

    store = current_store()
    params = dict(inp.parameters)
    for key in ("source", "labels", "collection", "year"):
        value = getattr(inp, key)
        if value is not None:
            params.setdefault(key, str(value))
    sub = submission.submit(get_settings(), store, inp.workflow, params, inp.reason)
    if inp.pending_state:
        trigger.commit(store, store.key_of(inp.pending_state))
    return SubmitOutput(workflow=sub.workflow, backend=sub.backend, run=sub.run, record=sub.record)
