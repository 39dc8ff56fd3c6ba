"""`landstack features`: time-series features and U-Net inputs from a STAC archive."""

from __future__ import annotations

import typer

from landstack.pipelines import validate
from landstack.pipelines.commands._errors import ErrorMappingGroup
from landstack.pipelines.commands._stack import StackRequest, stack_options
from landstack.pipelines.settings import get_settings
from landstack.storage import layout

# Library modules (xarray, dask, GDAL) are imported inside the commands so that `landstack --help`
# and unrelated sub-commands start fast.

app = typer.Typer(
    cls=ErrorMappingGroup,
    help="Features from Sentinel-2 time series (interpolated series, quantiles, harmonics).",
)


@app.command("timeseries")
@stack_options
def timeseries(
    request: StackRequest,
    prefix: str = typer.Option("features", help="output key prefix in the object store"),
) -> None:
    """Write one 54-band COG per feature and data_score.tif under PREFIX."""
    from landstack.pipelines import features
    from landstack.pipelines.feature_rasters import write_timeseries

    prefix = validate.check_key(prefix, "--prefix")
    store = validate.output_store(get_settings())
    cfg = features.FeatureConfig()
    ds = features.timeseries_features(request.load(cfg.needed_bands), request.year, cfg)
    for href in write_timeseries(ds, store, prefix):
        typer.echo(href)


@app.command("unet")
@stack_options
def unet(
    request: StackRequest,
    key: str = typer.Option(f"{layout.FEATURES}/unet_inputs.tif", help="output key in the object store"),
) -> None:
    """Write band quantiles, NDVI harmonic coefficients and median NDVI as one COG."""
    from landstack.pipelines import features
    from landstack.pipelines.feature_rasters import write_geotiff

    key = validate.check_key(key, "--key")
    store = validate.output_store(get_settings())
    cfg = features.FeatureConfig()
    bands = list(dict.fromkeys([*cfg.quantile_bands, "B04", "B08"]))
    inputs = features.unet_inputs(request.load(bands), cfg)
    typer.echo(write_geotiff(inputs, store, key, float("nan")))
