"""`landstack synth`: write a synthetic Sentinel-2 L2A archive with its ground truth."""

from __future__ import annotations

import datetime as dt

import typer

from landstack.pipelines.errors import PipelineError

app = typer.Typer(help="Synthetic Sentinel-2 L2A archives with known ground truth.")


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'minx,miny,maxx,maxy' as four floats."""
    try:
        a, b, c, d = (float(v) for v in text.split(","))
    except ValueError as e:
        raise typer.BadParameter(f"bbox {text!r} must be minx,miny,maxx,maxy") from e
    return (a, b, c, d)


@app.callback(invoke_without_command=True)
def synth(
    bbox: str = typer.Option("16.2865,48.191,16.3135,48.209", help="AOI minx,miny,maxx,maxy in --crs"),
    crs: str = typer.Option("EPSG:4326", help="CRS of --bbox"),
    start: str = typer.Option("2022-10-01", help="first acquisition date (YYYY-MM-DD)"),
    end: str = typer.Option("2024-03-31", help="last acquisition date (YYYY-MM-DD)"),
    seed: int = typer.Option(0, help="random seed: the same seed writes the same archive"),
    provider: str = typer.Option(
        "earth-search", help="asset naming: earth-search (blue, nir, scl) or band-id (B02, SCL)"
    ),
    prefix: str = typer.Option("synthetic", help="key prefix in the object store (LANDSTACK_STORE_URL)"),
    points_per_class: int = typer.Option(100, help="labelled sample points per class"),
    workers: int = typer.Option(2, help="acquisitions rendered in parallel"),
) -> None:
    """Write COGs, STAC items (+ a static collection), truth layers and sample points."""
    from landstack.pipelines.store import ObjectStore
    from landstack.pipelines.synth import Aoi, SynthConfig, write_archive

    cfg = SynthConfig(
        aoi=Aoi(parse_bbox(bbox), crs),
        start=dt.date.fromisoformat(start),
        end=dt.date.fromisoformat(end),
        seed=seed,
        provider=provider,
        points_per_class=points_per_class,
        workers=workers,
    )
    try:
        store = ObjectStore.from_settings()
        result = write_archive(cfg, store, prefix)
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"wrote {len(result.item_keys)} items; collection {store.href(result.collection_key)}")
    typer.echo(f"truth: {', '.join(store.href(k) for k in result.truth_keys.values())}")
    typer.echo(f"samples: {store.href(result.samples_key)}")
