"""`landstack demo`: the whole local chain on embedded defaults, ending in a running STAC API."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import typer

from landstack.pipelines import validate
from landstack.pipelines.commands._errors import ErrorMappingGroup

app = typer.Typer(cls=ErrorMappingGroup, help="Run the demo chain locally (needs `landstack services up`).")

# The synthetic scene is generated whole in memory; beyond this the demo is no longer a demo.
MAX_SIZE_M = 20_000.0


@app.callback(invoke_without_command=True)
def demo(
    size_m: float = typer.Option(2000.0, help="edge of the square AOI in metres"),
    epochs: int = typer.Option(20, help="maximum training epochs of each model"),
    seed: int = typer.Option(7, help="seed of the synthetic archive"),
) -> None:
    """Catalogue, synthetic archive, training and production workflows, model server, STAC API, web map."""
    from landstack.pipelines.demo import DemoConfig, run_demo, summary

    size_m = validate.check_range(size_m, "--size-m", 500, MAX_SIZE_M)
    epochs = validate.check_positive(epochs, "--epochs")
    with _quiet(), _StepBars() as bars:
        result = run_demo(
            DemoConfig(size_m=size_m, epochs=epochs, seed=seed), log=bars.log, progress=bars.start
        )
    typer.echo(summary(result))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Library warnings (GDAL georeferencing notes, deprecations) are noise in the demo's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _StepBars:
    """A progress bar per workflow run: steps done and time elapsed; the demo's lines above it."""

    def __enter__(self) -> _StepBars:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} steps"),
            TimeElapsedColumn(),
        )
        self.progress.__enter__()
        self.task: Any = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def log(self, message: str) -> None:
        self.progress.console.print(message, highlight=False)

    def start(self, workflow: str) -> Callable[[str, str], None]:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(workflow, total=None)
        task = self.task

        def on_node(node: str, phase: str) -> None:
            if phase in ("Succeeded", "Skipped"):
                self.progress.advance(task)
            elif phase == "Failed":
                self.log(f"      failed: {node}")

        return on_node
