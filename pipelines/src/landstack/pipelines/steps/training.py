"""Training steps: label cleaning, training (optionally per production unit), evaluation, registration.

Inputs and outputs are object-store URLs; the model code works on local copies in a temporary
folder, and the results are uploaded under a store prefix.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field

from landstack.models.jobs import MAX_MAE, TrainJob
from landstack.pipelines.steps._transfer import fetch, upload
from landstack.pipelines.steps.registry import StepInput, StepOutput, current_store, input_hash, step
from landstack.storage import ObjectStore, layout

log = logging.getLogger("landstack.steps")

_HEADLINE = ("overall_accuracy", "kappa", "macro_f1", "targets_passed", "mae", "rmse", "r2", "bias")


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in _HEADLINE if k in metrics}


def _stem(url: str) -> str:
    return PurePosixPath(url.split("?", 1)[0]).stem


# --- label cleaning -----------------------------------------------------------------------------


class CleanLabelsInput(StepInput):
    """Flag suspicious labels of a training table with cleanlab and write the cleaned table."""

    table_url: str = Field(description="training table (Parquet or CSV)")
    iterations: int = Field(15, ge=1, description="repeated splits; a sample must be flagged in every one")
    folds: int = Field(2, ge=2)
    epochs: int = Field(20, ge=1, description="epochs of each out-of-sample TempCNN fit")
    batch_size: int = Field(32, ge=1)
    hyperparameters: dict[str, int | float] = Field(default_factory=dict)
    seed: int = 0
    threads: int | None = Field(2, ge=1)
    out: str | None = Field(
        None, description="key of the cleaned table (default samples/<input hash>/<stem>-clean.parquet)"
    )
    enabled: bool = Field(True, description="false: pass the table on unchanged (no cleaning)")


class CleanLabelsOutput(StepOutput):
    table_url: str = Field(description="the table without the flagged samples")
    issues_url: str | None = Field(description="CSV of the flagged samples with suggested labels")
    rows: int
    flagged: int


@step("clean-labels", CleanLabelsInput, CleanLabelsOutput)
def clean_labels(inp: CleanLabelsInput) -> CleanLabelsOutput:
    """Drop training samples whose labels cleanlab flags in every repeated split."""
    import pandas as pd

    from landstack.models.cleaning import drop_label_issues, label_issues, write_label_issues
    from landstack.models.tables import read_table, table_to_frame
    from landstack.models.training import TrainConfig

    store = current_store()
    if not inp.enabled:
        with tempfile.TemporaryDirectory() as tmp:
            rows = len(read_table(fetch(inp.table_url, Path(tmp))))
        return CleanLabelsOutput(table_url=inp.table_url, issues_url=None, rows=rows, flagged=0)
    out = (inp.out or f"{layout.SAMPLES}/{input_hash(inp)}/{_stem(inp.table_url)}-clean.parquet").strip("/")
    issues_key = f"{out.rsplit('.', 1)[0]}-label-issues.csv"
    with tempfile.TemporaryDirectory() as tmp:
        table = read_table(fetch(inp.table_url, Path(tmp)))
        config = TrainConfig(
            epochs=inp.epochs,
            batch_size=inp.batch_size,
            seed=inp.seed,
            threads=inp.threads,
            patience=inp.epochs,
        )
        issues = label_issues(table, config, dict(inp.hyperparameters), inp.iterations, inp.folds, log.info)
        cleaned = drop_label_issues(table, issues)
        issues_url = store.put_file(write_label_issues(issues, Path(tmp) / "issues.csv"), issues_key)
        frame: pd.DataFrame = table_to_frame(cleaned)
        local = Path(tmp) / "clean.parquet"
        frame.to_parquet(local, index=False)
        table_url = store.put_file(local, out)
    log.info("%d of %d samples flagged", len(issues), len(table))
    return CleanLabelsOutput(
        table_url=table_url, issues_url=issues_url, rows=len(cleaned), flagged=len(issues)
    )


# --- training -----------------------------------------------------------------------------------


class TrainInput(TrainJob, StepInput):
    """A training job whose samples, rasters, test samples and units are URLs."""

    prefix: str | None = Field(None, description="output key prefix (default runs/training/<name>/<version>)")


class TrainOutput(StepOutput):
    name: str
    version: str
    model_url: str = Field(description="the model (with production units: the fallback)")
    metrics_url: str
    unit_model_urls: dict[str, str] = Field(default_factory=dict, description="unit -> model URL")
    units_url: str | None = None
    files: dict[str, str] = Field(description="every file written, relative path -> URL")
    metrics: dict[str, Any] = Field(description="headline metrics of the model")
    targets_met: bool


@step("train", TrainInput, TrainOutput)
def train(inp: TrainInput) -> TrainOutput:
    """Train one model family (optionally one model per production unit) and upload model and metrics."""
    from landstack.models import jobs
    from landstack.models.units import FALLBACK

    store = current_store()
    version = inp.version or input_hash(inp)[:12]
    name = inp.model_name
    prefix = (inp.prefix or f"{layout.RUNS}/training/{name}/{version}").strip("/")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        local: dict[str, Any] = {
            "features": [str(fetch(u, work / "features" / str(i))) for i, u in enumerate(inp.features)],
            "version": version,
        }
        for key in ("samples", "truth", "test_samples", "units"):
            url = getattr(inp, key)
            if url is not None:
                local[key] = str(fetch(url, work / key))
        job = TrainJob.model_validate({**inp.model_dump(include=set(TrainJob.model_fields)), **local})
        outcome = jobs.train(job, work / "out", log=log.info)
        files = upload(store, work / "out", prefix)
    main = FALLBACK if outcome.per_unit else ""
    rel = f"{main}/" if main else ""
    metrics = outcome.results[main].metrics
    return TrainOutput(
        name=name,
        version=version,
        model_url=files[f"{rel}model.pt"],
        metrics_url=files[f"{rel}metrics.json"],
        unit_model_urls={u: files[f"{u}/model.pt"] for u in outcome.results} if outcome.per_unit else {},
        units_url=files.get("units.json"),
        files=files,
        metrics=_headline(metrics),
        targets_met=jobs.targets_met(metrics),
    )


# --- evaluation ---------------------------------------------------------------------------------


class EvaluateInput(StepInput):
    """A trained model against independent test samples."""

    model_url: str
    test_url: str = Field(description="test table (Parquet/CSV) for a TempCNN, patch set (.npz) otherwise")
    max_mae: float = Field(MAX_MAE, gt=0, description="MAE target of regression models")
    prefix: str | None = Field(None, description="output key prefix (default runs/evaluation/<input hash>)")


class EvaluateOutput(StepOutput):
    metrics_url: str
    files: dict[str, str]
    metrics: dict[str, Any]
    targets_met: bool


@step("evaluate", EvaluateInput, EvaluateOutput)
def evaluate(inp: EvaluateInput) -> EvaluateOutput:
    """Evaluate a model on test samples: metrics.json, plots, and whether the accuracy targets are met."""
    from landstack.models.evaluation import write_metrics
    from landstack.models.jobs import targets_met
    from landstack.models.modelfile import load_model
    from landstack.models.patches import load_patches
    from landstack.models.runs import evaluate_model
    from landstack.models.tables import read_table

    store = current_store()
    prefix = (inp.prefix or f"{layout.RUNS}/evaluation/{input_hash(inp)}").strip("/")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, metadata = load_model(fetch(inp.model_url, work / "model"), store.s3)
        test_path = fetch(inp.test_url, work / "test")
        test = load_patches(test_path) if test_path.suffix.lower() == ".npz" else read_table(test_path)
        metrics, _ = evaluate_model(model, metadata, test, work / "out")
        met = targets_met(metrics, inp.max_mae)
        metrics["targets_met"] = met
        metrics["model"] = {"name": metadata["name"], "version": metadata["version"], "url": inp.model_url}
        write_metrics(metrics, work / "out" / "metrics.json")
        files = upload(store, work / "out", prefix)
    return EvaluateOutput(
        metrics_url=files["metrics.json"], files=files, metrics=_headline(metrics), targets_met=met
    )


# --- registration -------------------------------------------------------------------------------


class RegisterInput(StepInput):
    """A trained model (with its metrics and plots) into the model registry."""

    model_url: str
    metrics_url: str | None = None
    file_urls: list[str] = Field(default_factory=list, description="plots and tables to keep beside it")
    name: str | None = Field(None, description="registry name (default: the name in the model's metadata)")
    version: str | None = Field(None, description="registry version (default: the model's version)")
    training_data: str | None = Field(None, description="URL of the training samples (derived_from link)")
    registry_url: str | None = Field(None, description="registry root (default: the object store root)")


class RegisterOutput(StepOutput):
    name: str
    version: str
    item_url: str
    model_url: str


@step("register", RegisterInput, RegisterOutput)
def register(inp: RegisterInput) -> RegisterOutput:
    """Put a trained model, its metrics, plots and STAC item into the model registry."""
    import json

    from landstack.models.modelfile import load_model
    from landstack.models.registry import register_model
    from landstack.pipelines.settings import get_settings

    store = current_store()
    root: str | ObjectStore = inp.registry_url or store
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, metadata = load_model(fetch(inp.model_url, work / "model"), store.s3)
        metadata = {
            **metadata,
            "name": inp.name or metadata["name"],
            "version": inp.version or metadata["version"],
        }
        metrics = (
            json.loads(fetch(inp.metrics_url, work / "metrics").read_text()) if inp.metrics_url else None
        )
        files = [fetch(u, work / "files" / str(i)) for i, u in enumerate(inp.file_urls)]
        reg = register_model(
            root,
            model,
            metadata,
            metrics,
            files,
            get_settings().s3(),
            training_data=inp.training_data,
        )
    return RegisterOutput(
        name=reg.name, version=reg.version, item_url=reg.item_href, model_url=reg.model_href
    )


# --- release ------------------------------------------------------------------------------------


class ReleaseInput(StepInput):
    """The models one InferenceService serves together (every unit's model and the fallback)."""

    name: str = Field(description="release name: the training run's model name, e.g. tempcnn")
    registered: list[dict[str, Any]] = Field(
        description="outputs of the register step (name, version of each registered model)"
    )
    registry_url: str | None = Field(None, description="registry root (default: the object store root)")


class ReleaseOutput(StepOutput):
    name: str
    version: str = Field(description="release id (a hash of the members' names and versions)")
    storage_uri: str = Field(description="the release folder, what an InferenceService's STORAGE_URI names")
    members: list[str] = Field(description="name:version of each member, each served under its name")


@step("release", ReleaseInput, ReleaseOutput)
def release(inp: ReleaseInput) -> ReleaseOutput:
    """Gather registered models into one release folder (releases/<name>/<id>/) for one model server."""
    from landstack.models.releases import Member, register_release
    from landstack.pipelines.errors import BadInputError
    from landstack.pipelines.settings import get_settings

    store = current_store()
    try:
        members = [Member(str(r["name"]), str(r["version"])) for r in inp.registered]
    except (KeyError, TypeError) as e:
        raise BadInputError(f"release: {inp.registered!r} are not outputs of the register step ({e})") from e
    rel = register_release(inp.registry_url or store, inp.name, members, get_settings().s3())
    return ReleaseOutput(
        name=rel.name,
        version=rel.version,
        storage_uri=rel.url,
        members=[f"{m.name}:{m.version}" for m in rel.members],
    )
