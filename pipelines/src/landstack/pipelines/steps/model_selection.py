"""Training orchestration steps: split a training table by production unit, and accept (or reject)
the trained models against the accuracy targets.

`plan-units` gives the training workflow its fan-out: one training table per production unit
that has enough samples, plus the fallback trained on every sample. `accept-models` is the gate
before registration and rollout: it passes only when every model met its targets.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from landstack.pipelines.steps._transfer import fetch
from landstack.pipelines.steps.registry import StepInput, StepOutput, current_store, input_hash, step
from landstack.storage import layout


class PlanUnitsInput(StepInput):
    table_url: str = Field(description="training table (Parquet) with x, y columns for unit assignment")
    units: str | None = Field(
        None, description="unit polygons (GeoJSON URL) in the table's CRS; none = one model"
    )
    id_property: str = Field("unit", description="property of the polygons holding the unit id")
    min_samples: int = Field(500, ge=1, description="samples a unit needs for a model of its own")
    model_name: str = Field("tempcnn", description="registry name; units get <name>-<unit>")


class UnitTable(BaseModel):
    unit: str
    model: str = Field(description="registry name of the unit's model")
    table: str = Field(description="URL of the unit's training table")
    samples: int


class PlanUnitsOutput(StepOutput):
    units: list[UnitTable]


@step("plan-units", PlanUnitsInput, PlanUnitsOutput)
def plan_units_step(inp: PlanUnitsInput) -> PlanUnitsOutput:
    """Split a training table into one table per production unit (with enough samples) and the fallback."""
    import pandas as pd

    from landstack.models.errors import UnitsError
    from landstack.models.units import FALLBACK, plan_units, units_from_polygons
    from landstack.pipelines.errors import BadInputError

    if not inp.units:
        n = len(pd.read_parquet(fetch(inp.table_url, Path(tempfile.mkdtemp()) / "t")))
        return PlanUnitsOutput(
            units=[UnitTable(unit="", model=inp.model_name, table=inp.table_url, samples=n)]
        )
    store = current_store()
    prefix = f"{layout.SAMPLES}/units/{input_hash(inp)}"
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = pd.read_parquet(fetch(inp.table_url, work / "table"))
        if not {"x", "y"} <= set(table.columns):
            raise BadInputError(
                f"{inp.table_url} has no x, y columns: production units need sample coordinates"
            )
        try:
            units = units_from_polygons(
                fetch(inp.units, work / "units"), table[["x", "y"]].to_numpy(), inp.id_property
            )
        except UnitsError as e:
            raise BadInputError(str(e)) from e
        for unit, rows in plan_units(units, inp.min_samples).items():
            part = table.iloc[rows]
            local = work / f"{unit}.parquet"
            part.to_parquet(local, index=False)
            url = store.put_file(local, f"{prefix}/{unit}.parquet")
            name = f"{inp.model_name}-{unit}" if unit != FALLBACK else f"{inp.model_name}-{FALLBACK}"
            out.append(UnitTable(unit=unit, model=name, table=url, samples=len(part)))
    return PlanUnitsOutput(units=out)


class AcceptInput(StepInput):
    trained: list[dict[str, Any]] = Field(description="outputs of the train step (one per unit)")


class AcceptedModel(BaseModel):
    name: str
    version: str
    model_url: str
    metrics_url: str
    metrics: dict[str, Any]


class AcceptOutput(StepOutput):
    targets_met: bool
    models: list[AcceptedModel]
    rejected: list[str] = Field(description="models that missed their targets, with their headline metrics")
    version: str = Field(description="the version the rollout names (the first model's)")


@step("accept-models", AcceptInput, AcceptOutput, cached=False)
def accept_models(inp: AcceptInput) -> AcceptOutput:
    """Pass the trained models on only when every one met its accuracy targets (held-out evaluation)."""
    from landstack.pipelines.errors import BadInputError

    if not inp.trained:
        raise BadInputError("accept-models got no trained models: the train step produced nothing")
    models, rejected = [], []
    for t in inp.trained:
        try:
            m = AcceptedModel(
                name=t["name"],
                version=t["version"],
                model_url=t["model_url"],
                metrics_url=t["metrics_url"],
                metrics=dict(t.get("metrics") or {}),
            )
        except (KeyError, TypeError) as e:
            raise BadInputError(f"accept-models: {t!r} is not an output of the train step ({e})") from e
        models.append(m)
        if not t.get("targets_met"):
            rejected.append(f"{m.name} {m.version}: {m.metrics}")
    return AcceptOutput(targets_met=not rejected, models=models, rejected=rejected, version=models[0].version)


class TrainingReportInput(StepInput):
    run: str = Field(description="the workflow run")
    evaluation: dict[str, Any] = Field(description="the output of accept-models")


class TrainingReportOutput(StepOutput):
    report: str = Field(description="URL of the report JSON")
    targets_met: bool
    rejected: list[str]


@step("training-report", TrainingReportInput, TrainingReportOutput, cached=False)
def training_report(inp: TrainingReportInput) -> TrainingReportOutput:
    """Write why a training run ended without a rollout (the models and the targets they missed)."""
    store = current_store()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in inp.run)
    url = store.put_json(f"{layout.RUNS}/training-reports/{safe}.json", {"run": inp.run, **inp.evaluation})
    return TrainingReportOutput(
        report=url,
        targets_met=bool(inp.evaluation.get("targets_met")),
        rejected=[str(r) for r in inp.evaluation.get("rejected", [])],
    )
