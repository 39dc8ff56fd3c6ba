"""`landstack train`: train, evaluate and (optionally) register TempCNN, U-Net and impervious CNN models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from landstack.models.errors import ModelError
from landstack.pipelines.settings import get_settings

if TYPE_CHECKING:
    from landstack.models.patches import PatchSet
    from landstack.models.runs import RunResult
    from landstack.models.training import TrainConfig

# torch, cleanlab and scikit-learn are imported inside the commands: `landstack --help` and the
# other sub-commands must not pay for them.

app = typer.Typer(help="Train, evaluate and register the models.", no_args_is_help=True)

_OUT = typer.Option(..., "--out", help="folder for model.pt, metrics.json and plots")
_TEST = typer.Option(None, "--test-samples", help="independent test samples (default: held-out share)")
_EPOCHS = typer.Option(60, help="maximum epochs (early stopping on a validation split)")
_BATCH = typer.Option(32, "--batch-size")
_LR = typer.Option(1e-3, "--lr", help="peak learning rate of the cyclic schedule")
_PATIENCE = typer.Option(15, help="epochs without validation improvement before stopping")
_HOLDOUT = typer.Option(0.2, help="held-out share for evaluation (grouped by 'group' when present)")
_SEED = typer.Option(0)
_THREADS = typer.Option(2, help="CPU threads for torch")
_DEVICE = typer.Option(None, help="cpu or cuda (default: cuda when available)")
_NAME = typer.Option(None, help="model name in the registry (default: the architecture)")
_VERSION = typer.Option(None, help="model version (default: UTC timestamp)")
_REGISTER = typer.Option(
    False, "--register", help="store the model, metrics, plots and STAC item in the registry"
)
_REGISTRY = typer.Option(None, help="registry root URL (default: LANDSTACK_STORE_URL)")


def _config(
    epochs: int, batch: int, lr: float, patience: int, seed: int, threads: int, device: str | None
) -> TrainConfig:
    from landstack.models.training import TrainConfig

    return TrainConfig(
        epochs=epochs, batch_size=batch, lr=lr, patience=patience, seed=seed, threads=threads, device=device
    )


def _version(version: str | None) -> str:
    return version or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _finish(result: RunResult, out: Path, register: bool, registry: str | None, training_data: str) -> None:
    m = result.metrics
    if "overall_accuracy" in m:
        typer.echo(f"OA {m['overall_accuracy']:.4f}  kappa {m['kappa']:.4f}  macro-F1 {m['macro_f1']:.4f}")
        if "random_forest" in m:
            rf = m["random_forest"]
            typer.echo(f"random forest ({rf['trees']} trees) OA {rf['overall_accuracy']:.4f}")
    else:
        typer.echo(f"MAE {m['mae']:.3f}  RMSE {m['rmse']:.3f}  R2 {m['r2']}  bias {m['bias']:.3f}")
    if register:
        from landstack.models.registry import register_model

        settings = get_settings()
        root = registry or settings.store_url
        opts = settings.storage_options() if root.startswith("s3://") else {}
        plots = [f for f in result.files if f.suffix in {".png", ".csv"}]
        reg = register_model(
            root, result.trained.model, result.trained.metadata, m, plots, opts, training_data=training_data
        )
        typer.echo(f"registered {reg.name} {reg.version}: {reg.item_href}")
    typer.echo(f"wrote {out / 'model.pt'} and {out / 'metrics.json'}")


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(2)


@app.command("tempcnn")
def tempcnn(
    samples: Path = typer.Option(..., "--samples", help="training table (Parquet or CSV, wide format)"),
    out: Path = _OUT,
    test_samples: Path | None = _TEST,
    epochs: int = _EPOCHS,
    batch_size: int = _BATCH,
    lr: float = _LR,
    patience: int = _PATIENCE,
    holdout: float = _HOLDOUT,
    seed: int = _SEED,
    threads: int = _THREADS,
    device: str | None = _DEVICE,
    filters: int = typer.Option(64),
    kernel_size: int = typer.Option(5),
    dense: int = typer.Option(256),
    dropout: float = typer.Option(0.2),
    clean: bool = typer.Option(False, "--clean", help="flag label issues with cleanlab (label_issues.csv)"),
    clean_iterations: int = typer.Option(15, help="repeated splits for label cleaning"),
    drop_label_issues: bool = typer.Option(
        False, "--drop-label-issues", help="drop flagged samples before fitting"
    ),
    compare_rf: bool = typer.Option(
        False, "--compare-rf", help="also evaluate a random forest on the same split"
    ),
    rf_trees: int = typer.Option(500),
    units: Path | None = typer.Option(
        None,
        help="production units: GeoJSON polygons, or the EEA 10 km biogeographical-region grid (CSV/folder)",
    ),
    min_unit_samples: int = typer.Option(500, help="samples a unit needs for a model of its own"),
    name: str | None = _NAME,
    version: str | None = _VERSION,
    register: bool = _REGISTER,
    registry: str | None = _REGISTRY,
) -> None:
    """Train a TempCNN land-cover classifier, evaluate it and write model, metrics and plots into OUT."""
    from landstack.models.runs import RunOptions, run_tempcnn, run_tempcnn_units
    from landstack.models.tables import read_table
    from landstack.models.units import read_biogeo_cells, units_from_grid, units_from_polygons

    options = RunOptions(
        config=_config(epochs, batch_size, lr, patience, seed, threads, device),
        hyperparameters={"filters": filters, "kernel_size": kernel_size, "dense": dense, "dropout": dropout},
        holdout=holdout,
        clean=clean,
        clean_iterations=clean_iterations,
        drop_label_issues=drop_label_issues,
        compare_rf=compare_rf,
        rf_trees=rf_trees,
        name=name or "tempcnn",
        version=_version(version),
        log=typer.echo,
    )
    try:
        table = read_table(samples)
        if units is not None:
            if table.xy is None:
                raise ModelError(f"{samples} has no x/y columns; production units need sample coordinates")
            if units.suffix.lower() in {".geojson", ".json"}:
                assigned = units_from_polygons(units, table.xy)
            else:
                assigned = units_from_grid(read_biogeo_cells(units), table.xy)
            results = run_tempcnn_units(table, assigned, out, options, min_unit_samples)
            for unit, r in results.items():
                typer.echo(f"unit {unit}: OA {r.metrics['overall_accuracy']:.4f}")
            typer.echo(f"wrote {len(results)} unit models and {out / 'units.json'}")
            return
        test = read_table(test_samples) if test_samples else None
        result = run_tempcnn(table, out, options, test)
        _finish(result, out, register, registry, str(samples.resolve()))
    except ModelError as e:
        raise _fail(e) from e


def _patches(
    samples: Path | None, features: list[Path], truth: Path | None, task: str, size: int, n: int, seed: int
) -> PatchSet:
    from landstack.models.patches import load_patches, sample_patches

    if samples is not None:
        return load_patches(samples)
    if not features or truth is None:
        raise ModelError("give --samples PATCHES.npz, or --features RASTER (repeatable) and --truth RASTER")
    return sample_patches(features, truth, patch_size=size, n_patches=n, task=task, seed=seed)


def _patch_command(
    architecture: str,
    task: str,
    samples: Path | None,
    features: list[Path],
    truth: Path | None,
    test_samples: Path | None,
    out: Path,
    patch_size: int,
    patches: int,
    ensemble: int,
    hp: dict,
    config: TrainConfig,
    holdout: float,
    name: str,
    version: str | None,
    register: bool,
    registry: str | None,
) -> None:
    from landstack.models.patches import load_patches
    from landstack.models.runs import RunOptions, run_patch_model

    options = RunOptions(
        config=config,
        hyperparameters=hp,
        holdout=holdout,
        ensemble_size=ensemble,
        name=name,
        version=_version(version),
        log=typer.echo,
    )
    try:
        train = _patches(samples, features, truth, task, patch_size, patches, config.seed)
        test = load_patches(test_samples) if test_samples else None
        result = run_patch_model(train, out, options, architecture, test)
        source = str(samples.resolve()) if samples else str(truth.resolve() if truth else "")
        _finish(result, out, register, registry, source)
    except ModelError as e:
        raise _fail(e) from e


_PATCH_SAMPLES = typer.Option(None, "--samples", help="patch set (.npz: x, y, channels, targets, group)")
_FEATURES = typer.Option([], "--features", help="feature raster(s) to cut patches from (repeatable)")
_TRUTH = typer.Option(None, "--truth", help="truth raster on the features' grid")
_PATCH_SIZE = typer.Option(64, help="patch size in pixels when sampling rasters")
_N_PATCHES = typer.Option(300, "--patches", help="patches to sample from rasters")


@app.command("unet")
def unet(
    out: Path = _OUT,
    samples: Path | None = _PATCH_SAMPLES,
    features: list[Path] = _FEATURES,
    truth: Path | None = _TRUTH,
    test_samples: Path | None = _TEST,
    patch_size: int = _PATCH_SIZE,
    patches: int = _N_PATCHES,
    depth: int = typer.Option(3),
    width: int = typer.Option(32),
    ensemble: int = typer.Option(1, help="K models averaged"),
    epochs: int = _EPOCHS,
    batch_size: int = typer.Option(8, "--batch-size"),
    lr: float = _LR,
    patience: int = _PATIENCE,
    holdout: float = _HOLDOUT,
    seed: int = _SEED,
    threads: int = _THREADS,
    device: str | None = _DEVICE,
    name: str | None = _NAME,
    version: str | None = _VERSION,
    register: bool = _REGISTER,
    registry: str | None = _REGISTRY,
) -> None:
    """Train a U-Net regressor (imperviousness density, built-up S / NRES: one output per truth band)."""
    _patch_command(
        "UNet",
        "regression",
        samples,
        features,
        truth,
        test_samples,
        out,
        patch_size,
        patches,
        ensemble,
        {"depth": depth, "width": width},
        _config(epochs, batch_size, lr, patience, seed, threads, device),
        holdout,
        name or "unet",
        version,
        register,
        registry,
    )


@app.command("impervious")
def impervious(
    out: Path = _OUT,
    samples: Path | None = _PATCH_SAMPLES,
    features: list[Path] = _FEATURES,
    truth: Path | None = _TRUTH,
    test_samples: Path | None = _TEST,
    patch_size: int = _PATCH_SIZE,
    patches: int = _N_PATCHES,
    width: int = typer.Option(32),
    epochs: int = _EPOCHS,
    batch_size: int = typer.Option(8, "--batch-size"),
    lr: float = _LR,
    patience: int = _PATIENCE,
    holdout: float = _HOLDOUT,
    seed: int = _SEED,
    threads: int = _THREADS,
    device: str | None = _DEVICE,
    name: str | None = _NAME,
    version: str | None = _VERSION,
    register: bool = _REGISTER,
    registry: str | None = _REGISTRY,
) -> None:
    """Train the impervious CNN (4 CISC classes at 30 m) on class patches."""
    _patch_command(
        "ImperviousCNN",
        "segmentation",
        samples,
        features,
        truth,
        test_samples,
        out,
        patch_size,
        patches,
        1,
        {"width": width},
        _config(epochs, batch_size, lr, patience, seed, threads, device),
        holdout,
        name or "impervious",
        version,
        register,
        registry,
    )
