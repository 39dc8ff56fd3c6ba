"""`landstack samples`: the wide training table at labelled points."""

from __future__ import annotations

import typer

from landstack.pipelines.commands.synth import parse_bbox
from landstack.pipelines.errors import PipelineError

app = typer.Typer(help="Training samples: time series at labelled points into Parquet.")


@app.callback(invoke_without_command=True)
def extract(
    points: str = typer.Option(None, help="Parquet with x, y, label[, group] (path or file:// / s3:// URL)"),
    points_crs: str = typer.Option("EPSG:4326", help="CRS of the point coordinates, e.g. EPSG:32633"),
    polygons: str = typer.Option(
        None, help="GeoJSON of labelled polygons (property 'label'); every pixel inside is a sample"
    ),
    polygons_crs: str = typer.Option("EPSG:4326", help="CRS of the polygon coordinates"),
    max_pixels_per_polygon: int = typer.Option(None, help="random subset of pixels per polygon"),
    year: int = typer.Option(..., help="reference year (series covers year ± 3 months)"),
    bbox: str = typer.Option(..., help="AOI minx,miny,maxx,maxy to search"),
    crs: str = typer.Option("EPSG:4326", help="CRS of --bbox"),
    catalog: str = typer.Option(None, help="static STAC collection.json href"),
    api_url: str = typer.Option(None, help="STAC API root URL"),
    target_crs: str = typer.Option("EPSG:3035", help="grid to sample on, or 'native'"),
    out: str = typer.Option("samples/training.parquet", help="output key in the object store"),
) -> None:
    """Extract `<feature>_<t>` series at labelled points or polygons into a wide Parquet table."""
    import json

    import pandas as pd

    from landstack.pipelines import ingest, samples
    from landstack.pipelines.features import FeatureConfig
    from landstack.pipelines.store import ObjectStore, open_url
    from landstack.pipelines.synth import Aoi

    if (points is None) == (polygons is None):
        typer.echo("error: give exactly one of --points or --polygons", err=True)
        raise typer.Exit(2)
    cfg = FeatureConfig()
    try:
        aoi = Aoi(parse_bbox(bbox), crs)
        source = points or polygons
        with open_url(source if "://" in source else f"file://{source}") as f:
            pts = pd.read_parquet(f) if points else None
            geojson = None if points else json.load(f)
        items = ingest.search_items(
            aoi, f"{year - 1}-10-01", f"{year + 1}-03-31", catalog_href=catalog, api_url=api_url
        )
        ingest.configure_gdal()
        stack = ingest.load_stack(items, cfg.needed_bands, aoi=aoi, crs=target_crs, chunks=512)
        if geojson is not None:
            pts = samples.polygon_points(
                stack, geojson, polygons_crs, max_pixels_per_polygon=max_pixels_per_polygon
            )
            points_crs = samples.stack_crs(stack).to_string()
        table = samples.extract_samples(stack, pts, year, points_crs=points_crs, cfg=cfg)
        href = samples.write_table(table, ObjectStore.from_settings(), out)
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"wrote {len(table)} rows x {table.shape[1]} columns to {href}")
