"""`landstack train`: train, evaluate and (optionally) register TempCNN, U-Net and impervious CNN models.

The commands only parse: the options every architecture shares (and those the patch models share)
are declared once and added by `_train_options`; each command hands them, with its own
hyperparameters, to `TrainArgs.run`, which builds one `landstack.models.jobs.TrainJob` and calls
`landstack.models.jobs.train` (and `register`), the same functions the `train` step calls. Errors
are raised; the CLI's root group turns them into one message and an exit code.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from landstack.pipelines.settings import get_settings

# torch, cleanlab and scikit-learn are imported inside the commands: `landstack --help` and the
# other sub-commands must not pay for them.

app = typer.Typer(help="Train, evaluate and register the models.", no_args_is_help=True)

# The options of every architecture, declared once: name -> (type, typer option).
_COMMON: dict[str, tuple[Any, Any]] = {
    "out": (Path, typer.Option(..., "--out", help="folder for model.pt, metrics.json and plots")),
    "test_samples": (
        Path | None,
        typer.Option(None, "--test-samples", help="independent test samples (default: held-out share)"),
    ),
    "epochs": (int, typer.Option(60, help="maximum epochs (early stopping on a validation split)")),
    "lr": (float, typer.Option(1e-3, "--lr", help="peak learning rate of the cyclic schedule")),
    "patience": (int, typer.Option(15, help="epochs without validation improvement before stopping")),
    "holdout": (
        float,
        typer.Option(0.2, help="held-out share for evaluation (grouped by 'group' when present)"),
    ),
    "seed": (int, typer.Option(0)),
    "threads": (int, typer.Option(2, help="CPU threads for torch")),
    "device": (str | None, typer.Option(None, help="cpu or cuda (default: cuda when available)")),
    "name": (str | None, typer.Option(None, help="model name in the registry (default: the architecture)")),
    "version": (str | None, typer.Option(None, help="model version (default: UTC timestamp)")),
    "register": (
        bool,
        typer.Option(
            False, "--register", help="store the model, metrics, plots and STAC item in the registry"
        ),
    ),
    "registry": (str | None, typer.Option(None, help="registry root URL (default: LANDSTACK_STORE_URL)")),
}

# The options of the patch models (U-Net, impervious CNN): where the patches come from.
_PATCHES: dict[str, tuple[Any, Any]] = {
    "samples": (
        Path | None,
        typer.Option(None, "--samples", help="patch set (.npz: x, y, channels, targets, group)"),
    ),
    "features": (list[Path], typer.Option([], "--features", help="feature raster(s) to cut patches from")),
    "truth": (Path | None, typer.Option(None, "--truth", help="truth raster on the features' grid")),
    "patch_size": (int, typer.Option(64, help="patch size in pixels when sampling rasters")),
    "patches": (int, typer.Option(300, "--patches", help="patches to sample from rasters")),
    "batch_size": (int, typer.Option(8, "--batch-size")),
}

# Options that drive the command, not the job.
_NOT_JOB = {"out", "register", "registry"}


def _text(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, list):
        return [_text(x) for x in v]
    return v


@dataclass(frozen=True)
class TrainArgs:
    """The shared options of one `train` command, as given."""

    values: dict[str, Any]

    def run(self, architecture: str, hyperparameters: dict[str, Any], **own: Any) -> None:
        """Build the TrainJob (shared + command-specific fields), train it into --out, register when asked.

        An inconsistent combination raises pydantic's ValidationError, which the CLI reports as bad input.
        """
        from landstack.models import jobs

        fields = {k: _text(v) for k, v in {**self.values, **own}.items() if k not in _NOT_JOB}
        job = jobs.TrainJob(architecture=architecture, hyperparameters=hyperparameters, **fields)
        out: Path = self.values["out"]
        outcome = jobs.train(job, out, log=typer.echo)
        for line in jobs.summary_lines(outcome):
            typer.echo(line)
        if self.values["register"]:
            settings = get_settings()
            root = self.values["registry"] or settings.store_url
            for reg in jobs.register(outcome, root, settings.s3()):
                typer.echo(f"registered {reg.name} {reg.version}: {reg.item_href}")
        if outcome.per_unit:
            typer.echo(f"wrote {len(outcome.results)} unit models and {out / 'units.json'}")
        else:
            typer.echo(f"wrote {out / 'model.pt'} and {out / 'metrics.json'}")


def _train_options(
    *groups: dict[str, tuple[Any, Any]],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared option groups; it receives them as `args: TrainArgs`."""
    names = [name for group in groups for name in group]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        shared = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
            for group in groups
            for name, (kind, option) in group.items()
        ]
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.name != "args"
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            command(args=TrainArgs({name: kwargs.pop(name) for name in names}), **kwargs)

        params = [*shared, *own]
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        # typer reads the annotations too: give it the evaluated ones (with their typer options)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


@app.command("tempcnn")
@_train_options(_COMMON)
def tempcnn(
    args: TrainArgs,
    samples: Annotated[Path, typer.Option("--samples", help="training table (Parquet or CSV, wide format)")],
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    filters: Annotated[int, typer.Option()] = 64,
    kernel_size: Annotated[int, typer.Option()] = 5,
    dense: Annotated[int, typer.Option()] = 256,
    dropout: Annotated[float, typer.Option()] = 0.2,
    clean: Annotated[bool, typer.Option("--clean", help="flag label issues with cleanlab")] = False,
    clean_iterations: Annotated[int, typer.Option(help="repeated splits for label cleaning")] = 15,
    drop_label_issues: Annotated[
        bool, typer.Option("--drop-label-issues", help="drop flagged samples before fitting")
    ] = False,
    compare_rf: Annotated[
        bool, typer.Option("--compare-rf", help="also evaluate a random forest on the same split")
    ] = False,
    rf_trees: Annotated[int, typer.Option()] = 500,
    units: Annotated[
        Path | None,
        typer.Option(help="production units: GeoJSON polygons, or the EEA 10 km biogeographical-region grid"),
    ] = None,
    min_unit_samples: Annotated[int, typer.Option(help="samples a unit needs for a model of its own")] = 500,
) -> None:
    """Train a TempCNN land-cover classifier, evaluate it and write model, metrics and plots into OUT."""
    args.run(
        "tempcnn",
        {"filters": filters, "kernel_size": kernel_size, "dense": dense, "dropout": dropout},
        samples=samples,
        batch_size=batch_size,
        clean=clean,
        clean_iterations=clean_iterations,
        drop_label_issues=drop_label_issues,
        compare_rf=compare_rf,
        rf_trees=rf_trees,
        units=units,
        min_unit_samples=min_unit_samples,
    )


@app.command("unet")
@_train_options(_COMMON, _PATCHES)
def unet(
    args: TrainArgs,
    depth: Annotated[int, typer.Option()] = 3,
    width: Annotated[int, typer.Option()] = 32,
    ensemble: Annotated[int, typer.Option(help="K models averaged")] = 1,
) -> None:
    """Train a U-Net regressor (imperviousness density, built-up S / NRES: one output per truth band)."""
    args.run("unet", {"depth": depth, "width": width}, ensemble=ensemble)


@app.command("impervious")
@_train_options(_COMMON, _PATCHES)
def impervious(args: TrainArgs, width: Annotated[int, typer.Option()] = 32) -> None:
    """Train the impervious CNN (4 CISC classes at 30 m) on class patches."""
    args.run("impervious", {"width": width})
