"""Training jobs: one description of what to train, and the functions that run and register it.

A :class:`TrainJob` is what both the `landstack train` commands and the `train` pipeline step
build: the architecture, where the samples come from (a training table, a patch set, or feature
and truth rasters to cut patches from), the fitting knobs and, optionally, production units.
:func:`train` dispatches it (one model, or one per production unit plus the fallback) into a
folder; :func:`register` puts every model of the outcome into the registry, a unit's model as
``<name>-<unit>`` (the fallback as ``<name>-fallback``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from landstack.models.errors import SamplesError, UnitsError
from landstack.storage import ObjectStore, S3Options

Architecture = Literal["tempcnn", "unet", "impervious"]

# pandas, torch and matplotlib are imported inside the functions: the CLI and the step registry
# import this module to describe jobs, which must stay cheap.

# What each architecture is called in the model files, its task and its default batch size.
_PATCH_ARCHITECTURES = {"unet": ("UNet", "regression"), "impervious": ("ImperviousCNN", "segmentation")}
_DEFAULT_BATCH = {"tempcnn": 32, "unet": 8, "impervious": 8}
_HYPERPARAMETERS = {
    "tempcnn": {"filters", "kernel_size", "dense", "dropout"},
    "unet": {"depth", "width"},
    "impervious": {"width"},
}
MAX_MAE = 10.0  # imperviousness points: the U-Net's quality target on held-out patches


class TrainJob(BaseModel):
    """What to train and how; JSON-serialisable, so a pipeline step can take it as its input."""

    model_config = ConfigDict(extra="forbid")

    architecture: Architecture
    samples: str | None = Field(
        None, description="training table (Parquet/CSV, TempCNN) or patch set (.npz, U-Net/impervious)"
    )
    features: list[str] = Field(
        default_factory=list, description="feature rasters to cut patches from (instead of a patch set)"
    )
    truth: str | None = Field(None, description="truth raster on the feature rasters' grid")
    test_samples: str | None = Field(None, description="independent test samples (default: held out)")
    patch_size: int = Field(64, ge=8, description="patch size in pixels when cutting rasters")
    patches: int = Field(300, ge=2, description="patches to cut from the rasters")
    epochs: int = Field(60, ge=1)
    batch_size: int | None = Field(None, ge=1, description="default: 32 for TempCNN, 8 for patch models")
    lr: float = Field(1e-3, gt=0, description="peak learning rate of the cyclic schedule")
    patience: int = Field(15, ge=1, description="epochs without validation improvement before stopping")
    holdout: float = Field(0.2, gt=0, lt=1, description="held-out share for the evaluation")
    seed: int = 0
    threads: int | None = Field(2, ge=1, description="CPU threads for torch")
    device: str | None = Field(None, description="cpu or cuda (default: cuda when available)")
    hyperparameters: dict[str, int | float] = Field(
        default_factory=dict, description="architecture hyperparameters, e.g. filters, dense, depth, width"
    )
    ensemble: int = Field(1, ge=1, description="models averaged (U-Net)")
    clean: bool = Field(False, description="flag label issues with cleanlab (TempCNN)")
    clean_iterations: int = Field(15, ge=1)
    drop_label_issues: bool = False
    compare_rf: bool = Field(False, description="also evaluate a random forest on the same split")
    rf_trees: int = Field(500, ge=1)
    units: str | None = Field(
        None, description="production units: GeoJSON polygons or the EEA 10 km biogeographical-region grid"
    )
    min_unit_samples: int = Field(500, ge=1, description="samples a unit needs for a model of its own")
    name: str | None = Field(None, description="model name (default: the architecture)")
    version: str | None = Field(None, description="model version (default: UTC timestamp)")

    @model_validator(mode="after")
    def _consistent(self) -> TrainJob:
        if self.architecture == "tempcnn":
            if self.samples is None:
                raise ValueError("a TempCNN needs 'samples': the training table (Parquet or CSV)")
        else:
            if self.samples is None and (not self.features or self.truth is None):
                raise ValueError(
                    "give 'samples' (a .npz patch set), or 'features' (feature rasters) and 'truth'"
                )
            if self.units is not None:
                raise ValueError("production units are supported for the TempCNN only; drop 'units'")
        unknown = set(self.hyperparameters) - _HYPERPARAMETERS[self.architecture]
        if unknown:
            allowed = sorted(_HYPERPARAMETERS[self.architecture])
            raise ValueError(
                f"hyperparameters {sorted(unknown)} are not {self.architecture}'s; use {allowed}"
            )
        return self

    @property
    def model_name(self) -> str:
        return self.name or self.architecture


@dataclass
class TrainOutcome:
    """The runs of a job: one (key ``""``) or one per production unit (keys: unit ids, the fallback)."""

    job: TrainJob
    out_dir: Path
    version: str
    results: dict[str, Any]  # unit -> landstack.models.runs.RunResult
    per_unit: bool

    def run_dir(self, unit: str) -> Path:
        """Folder of one run (the job's folder, or its unit's sub-folder)."""
        return self.out_dir / unit if self.per_unit else self.out_dir

    def model_name(self, unit: str) -> str:
        """Registry name of one run's model: ``<name>`` or ``<name>-<unit>``."""
        return f"{self.job.model_name}-{unit}" if self.per_unit else self.job.model_name


def default_version() -> str:
    """A UTC timestamp version, e.g. 20260101T120000Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _options(job: TrainJob, version: str, log: Callable[[str], None] | None) -> Any:
    from landstack.models.runs import RunOptions
    from landstack.models.training import TrainConfig

    config = TrainConfig(
        epochs=job.epochs,
        batch_size=job.batch_size or _DEFAULT_BATCH[job.architecture],
        lr=job.lr,
        patience=job.patience,
        seed=job.seed,
        threads=job.threads,
        device=job.device,
    )
    return RunOptions(
        config=config,
        hyperparameters=dict(job.hyperparameters),
        holdout=job.holdout,
        clean=job.clean,
        clean_iterations=job.clean_iterations,
        drop_label_issues=job.drop_label_issues,
        compare_rf=job.compare_rf,
        rf_trees=job.rf_trees,
        ensemble_size=job.ensemble,
        name=job.model_name,
        version=version,
        log=log,
    )


def assign_units(units: str | Path, xy: Any, source: str = "training table") -> Any:
    """Production unit of each sample (x, y) from unit polygons (GeoJSON) or the biogeographical grid."""
    from landstack.models.units import read_biogeo_cells, units_from_grid, units_from_polygons

    if xy is None:
        raise UnitsError(f"{source} has no x/y columns; production units need sample coordinates")
    path = Path(units)
    if path.suffix.lower() in {".geojson", ".json"}:
        return units_from_polygons(path, xy)
    return units_from_grid(read_biogeo_cells(path), xy)


def patch_source(job: TrainJob) -> Any:
    """The job's training patches: a saved patch set, or patches cut from feature and truth rasters."""
    from landstack.models.patches import load_patches, sample_patches

    if job.samples is not None:
        return load_patches(job.samples)
    if not job.features or job.truth is None:
        raise SamplesError("give a patch set (.npz), or feature rasters and a truth raster")
    task = _PATCH_ARCHITECTURES[job.architecture][1]
    return sample_patches(
        job.features, job.truth, patch_size=job.patch_size, n_patches=job.patches, task=task, seed=job.seed
    )


def train(job: TrainJob, out_dir: Path, log: Callable[[str], None] | None = None) -> TrainOutcome:
    """Train, evaluate and write the job's model(s), metrics and plots into `out_dir`.

    With production units, each unit with enough samples gets ``out_dir/<unit>/`` and the
    fallback (every sample) ``out_dir/fallback/``; ``out_dir/units.json`` summarises them.
    """
    from landstack.models.patches import load_patches
    from landstack.models.runs import run_patch_model, run_tempcnn, run_tempcnn_units
    from landstack.models.tables import read_table

    version = job.version or default_version()
    options = _options(job, version, log)
    if job.architecture == "tempcnn":
        assert job.samples is not None  # the validator requires it
        table = read_table(job.samples, classes="auto")  # class codes of a catalogue layer
        if job.units is not None:
            assigned = assign_units(job.units, table.xy, job.samples)
            results = run_tempcnn_units(table, assigned, out_dir, options, job.min_unit_samples)
            return TrainOutcome(job, out_dir, version, dict(results), per_unit=True)
        test = read_table(job.test_samples) if job.test_samples else None
        return TrainOutcome(job, out_dir, version, {"": run_tempcnn(table, out_dir, options, test)}, False)
    architecture = _PATCH_ARCHITECTURES[job.architecture][0]
    patches = patch_source(job)
    test_patches = load_patches(job.test_samples) if job.test_samples else None
    result = run_patch_model(patches, out_dir, options, architecture, test_patches)
    return TrainOutcome(job, out_dir, version, {"": result}, per_unit=False)


def training_source(job: TrainJob) -> str:
    """What the model was trained on, for the registry item's `derived_from` link."""
    src = job.samples or job.truth or ""
    return src if "://" in src else str(Path(src).resolve()) if src else ""


def register(
    outcome: TrainOutcome,
    root: str | ObjectStore,
    s3: S3Options | None = None,
    training_data: str | None = None,
) -> list[Any]:
    """Register every model of the outcome (units as ``<name>-<unit>``, the fallback last).

    Returns the `landstack.models.registry.Registered` records in registration order.
    """
    from landstack.models.registry import register_model
    from landstack.models.units import FALLBACK

    source = training_data if training_data is not None else training_source(outcome.job)
    units = sorted(u for u in outcome.results if u != FALLBACK) + (
        [FALLBACK] if FALLBACK in outcome.results else []
    )
    registered = []
    for unit in units:
        run = outcome.results[unit]
        metadata = dict(run.trained.metadata)
        metadata["name"], metadata["version"] = outcome.model_name(unit), outcome.version
        plots = [f for f in run.files if f.suffix in {".png", ".csv"}]
        registered.append(
            register_model(root, run.trained.model, metadata, run.metrics, plots, s3, training_data=source)
        )
    return registered


def targets_met(metrics: dict[str, Any], max_mae: float = MAX_MAE) -> bool:
    """Whether a model meets its accuracy targets: the CLCplus targets, or MAE <= `max_mae` for regression."""
    if "targets_passed" in metrics:
        return bool(metrics["targets_passed"])
    mae = metrics.get("mae")
    return mae is not None and float(mae) <= max_mae


def summary_lines(outcome: TrainOutcome) -> list[str]:
    """One line per run with its headline metrics."""
    lines = []
    for unit, run in outcome.results.items():
        m = run.metrics
        head = f"unit {unit}: " if unit else ""
        if "overall_accuracy" in m:
            line = (
                f"{head}OA {m['overall_accuracy']:.4f}  kappa {m['kappa']:.4f}  macro-F1 {m['macro_f1']:.4f}"
            )
            if "random_forest" in m:
                rf = m["random_forest"]
                line += f"; random forest ({rf['trees']} trees) OA {rf['overall_accuracy']:.4f}"
        else:
            line = f"{head}MAE {m['mae']:.3f}  RMSE {m['rmse']:.3f}  R2 {m['r2']}  bias {m['bias']:.3f}"
        lines.append(line)
    return lines
