"""`landstack features`: time-series features and U-Net inputs from a STAC archive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from landstack.pipelines.commands.synth import parse_bbox
from landstack.pipelines.errors import PipelineError

if TYPE_CHECKING:
    import xarray as xr

# Library modules (xarray, dask, GDAL) are imported inside the commands so that `landstack --help`
# and unrelated sub-commands start fast.

app = typer.Typer(help="Features from Sentinel-2 time series (interpolated series, quantiles, harmonics).")


def _stack(
    bbox: str,
    crs: str,
    year: int,
    catalog: str | None,
    api_url: str | None,
    target_crs: str,
    bands: list[str],
    max_cloud: float,
) -> xr.Dataset:
    from landstack.pipelines import ingest
    from landstack.pipelines.synth import Aoi

    aoi = Aoi(parse_bbox(bbox), crs)
    items = ingest.search_items(
        aoi,
        f"{year - 1}-10-01",
        f"{year + 1}-03-31",
        catalog_href=catalog,
        api_url=api_url,
        max_cloud=max_cloud,
    )
    ingest.configure_gdal()
    return ingest.load_stack(items, bands, aoi=aoi, crs=target_crs)


@app.command("timeseries")
def timeseries(
    bbox: str = typer.Option(..., help="AOI minx,miny,maxx,maxy"),
    year: int = typer.Option(..., help="reference year (series covers year ± 3 months)"),
    crs: str = typer.Option("EPSG:4326", help="CRS of --bbox"),
    catalog: str = typer.Option(None, help="static STAC collection.json href (file:// or s3://)"),
    api_url: str = typer.Option(None, help="STAC API root URL"),
    target_crs: str = typer.Option("EPSG:3035", help="output CRS, or 'native' for the items' UTM grid"),
    max_cloud: float = typer.Option(80.0, help="skip acquisitions with more cloud cover (%)"),
    prefix: str = typer.Option("features", help="output key prefix in the object store"),
) -> None:
    """Write one 54-band GeoTIFF per feature and data_score.tif under PREFIX."""
    from landstack.pipelines import features
    from landstack.pipelines.feature_rasters import write_geotiff
    from landstack.pipelines.store import ObjectStore

    cfg = features.FeatureConfig()
    try:
        stack = _stack(bbox, crs, year, catalog, api_url, target_crs, cfg.needed_bands, max_cloud)
        ds = features.timeseries_features(stack, year, cfg)
        store = ObjectStore.from_settings()
        for name in cfg.names:
            href = write_geotiff(
                ds["features"].sel(feature=name), store, f"{prefix}/{name}.tif", float("nan")
            )
            typer.echo(href)
        typer.echo(write_geotiff(ds["data_score"], store, f"{prefix}/data_score.tif"))
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


@app.command("unet")
def unet(
    bbox: str = typer.Option(..., help="AOI minx,miny,maxx,maxy"),
    year: int = typer.Option(..., help="reference year"),
    crs: str = typer.Option("EPSG:4326", help="CRS of --bbox"),
    catalog: str = typer.Option(None, help="static STAC collection.json href"),
    api_url: str = typer.Option(None, help="STAC API root URL"),
    target_crs: str = typer.Option("EPSG:3035", help="output CRS, or 'native'"),
    max_cloud: float = typer.Option(80.0, help="skip acquisitions with more cloud cover (%)"),
    key: str = typer.Option("features/unet_inputs.tif", help="output key in the object store"),
) -> None:
    """Write band quantiles, NDVI harmonic coefficients and median NDVI as one GeoTIFF."""
    from landstack.pipelines import features
    from landstack.pipelines.feature_rasters import write_geotiff
    from landstack.pipelines.store import ObjectStore

    cfg = features.FeatureConfig()
    try:
        bands = list(dict.fromkeys([*cfg.quantile_bands, "B04", "B08"]))
        stack = _stack(bbox, crs, year, catalog, api_url, target_crs, bands, max_cloud)
        typer.echo(
            write_geotiff(features.unet_inputs(stack, cfg), ObjectStore.from_settings(), key, float("nan"))
        )
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
