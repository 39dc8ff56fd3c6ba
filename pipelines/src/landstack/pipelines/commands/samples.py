"""`landstack samples`: the wide training table at labelled points or polygons."""

from __future__ import annotations

from typing import Any

import typer

from landstack.pipelines import validate
from landstack.pipelines.commands._errors import ErrorMappingGroup
from landstack.pipelines.commands._stack import StackRequest, stack_options
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.settings import get_settings
from landstack.storage import layout

app = typer.Typer(
    cls=ErrorMappingGroup, help="Training samples: time series at labelled points into Parquet."
)

_POLYGONS = ("Polygon", "MultiPolygon")


@app.callback(invoke_without_command=True)
@stack_options
def extract(
    request: StackRequest,
    points: str = typer.Option(None, help="Parquet with x, y, label[, group] (path or file:// / s3:// URL)"),
    points_crs: str = typer.Option("EPSG:4326", help="CRS of the point coordinates, e.g. EPSG:32633"),
    polygons: str = typer.Option(
        None, help="GeoJSON of labelled polygons (property 'label'); every pixel inside is a sample"
    ),
    polygons_crs: str = typer.Option("EPSG:4326", help="CRS of the polygon coordinates"),
    max_pixels_per_polygon: int = typer.Option(None, help="random subset of pixels per polygon"),
    out: str = typer.Option(layout.samples_key("training.parquet"), help="output key in the object store"),
) -> None:
    """Extract `<feature>_<t>` series at labelled points or polygons into a wide Parquet table."""
    from landstack.pipelines import samples
    from landstack.pipelines.features import FeatureConfig

    if (points is None) == (polygons is None):
        raise BadInputError("give exactly one of --points P.parquet or --polygons P.geojson")
    out = validate.check_key(out, "--out")
    store = validate.output_store(get_settings())
    s3 = get_settings().s3()
    geojson: dict[str, Any] | None = None
    if points is not None:
        points_crs = validate.check_crs(points_crs, "--points-crs")
        pts = validate.read_parquet(points, "--points", s3, columns=("x", "y", "label"))
        validate.check_columns(pts, f"--points {points!r}", numeric=("x", "y"), integer=("label",))
    else:
        polygons_crs = validate.check_crs(polygons_crs, "--polygons-crs")
        geojson = validate.read_geojson(polygons, "--polygons", s3, geometry_types=_POLYGONS)
        validate.check_feature_labels(geojson, f"--polygons {polygons!r}")
        if max_pixels_per_polygon is not None:
            validate.check_positive(max_pixels_per_polygon, "--max-pixels-per-polygon")
    cfg = FeatureConfig()
    stack = request.load(cfg.needed_bands, chunks=512)
    if geojson is not None:
        pts = samples.polygon_points(
            stack, geojson, polygons_crs, max_pixels_per_polygon=max_pixels_per_polygon
        )
        points_crs = samples.stack_crs(stack).to_string()
    table = samples.extract_samples(stack, pts, request.year, points_crs=points_crs, cfg=cfg)
    href = samples.write_table(table, store, out)
    typer.echo(f"wrote {len(table)} rows x {table.shape[1]} columns to {href}")
