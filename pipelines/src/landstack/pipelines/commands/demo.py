"""`landstack demo`: the whole local chain on embedded defaults, ending in a running STAC API."""

from __future__ import annotations

import typer

from landstack.pipelines.errors import PipelineError

app = typer.Typer(help="Run the demo chain locally (needs `landstack services up`).")


@app.callback(invoke_without_command=True)
def demo(
    size_m: float = typer.Option(3000.0, help="edge of the square AOI in metres"),
    epochs: int = typer.Option(20, help="maximum TempCNN epochs"),
    seed: int = typer.Option(7, help="seed of the synthetic archive"),
) -> None:
    """Catalogue, synthetic archive, publishing, STAC API, samples through the API, TempCNN training."""
    from landstack.catalog import CatalogError
    from landstack.models.errors import ModelError
    from landstack.pipelines.demo import DemoConfig, run_demo, summary

    try:
        result = run_demo(config=DemoConfig(size_m=size_m, epochs=epochs, seed=seed), log=typer.echo)
    except (PipelineError, CatalogError, ModelError) as e:
        typer.echo(f"demo failed: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(summary(result))
