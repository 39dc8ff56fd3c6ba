"""`landstack synth`: write a synthetic Sentinel-2 L2A archive with its ground truth."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from landstack.pipelines import validate
from landstack.pipelines.commands._errors import ErrorMappingGroup
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.settings import get_settings
from landstack.storage import layout

if TYPE_CHECKING:
    from landstack.pipelines.synth import Aoi

app = typer.Typer(cls=ErrorMappingGroup, help="Synthetic Sentinel-2 L2A archives with known ground truth.")

# The scene is generated whole in memory: an AOI edge beyond this is a mistake, not a request.
MAX_AOI_EDGE_M = 100_000.0


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
    prefix: str = typer.Option(
        f"{layout.ARCHIVE}/synthetic", help="key prefix in the object store (LANDSTACK_STORE_URL)"
    ),
    points_per_class: int = typer.Option(100, help="labelled sample points per class"),
    workers: int = typer.Option(2, help="acquisitions rendered in parallel"),
) -> None:
    """Write COGs, STAC items (+ a static collection), truth layers and sample points."""
    from landstack.pipelines import s2
    from landstack.pipelines.synth import Aoi, SynthConfig, write_archive

    crs = validate.check_crs(crs, "--crs")
    aoi = Aoi(validate.parse_bbox(bbox, crs), crs)
    _check_aoi_size(aoi)
    first, last = validate.check_date_range(start, end)
    cfg = SynthConfig(
        aoi=aoi,
        start=first,
        end=last,
        seed=seed,
        provider=validate.check_choice(provider, sorted(s2.PROVIDERS), "--provider"),
        points_per_class=validate.check_positive(points_per_class, "--points-per-class"),
        workers=validate.check_positive(workers, "--workers"),
    )
    prefix = validate.check_key(prefix, "--prefix")
    store = validate.output_store(get_settings())
    result = write_archive(cfg, store, prefix)
    typer.echo(f"wrote {len(result.item_keys)} items; collection {store.href(result.collection_key)}")
    typer.echo(f"truth: {', '.join(store.href(k) for k in result.truth_keys.values())}")
    typer.echo(f"samples: {store.href(result.samples_key)}")


def _check_aoi_size(aoi: Aoi) -> None:
    from landstack.catalog.grid import utm_epsg

    lon0, lat0, lon1, lat1 = aoi.to_crs("EPSG:4326")
    minx, miny, maxx, maxy = aoi.to_crs(f"EPSG:{utm_epsg((lon0 + lon1) / 2, (lat0 + lat1) / 2)}")
    edge = max(maxx - minx, maxy - miny)
    if edge > MAX_AOI_EDGE_M:
        raise BadInputError(
            f"--bbox {aoi.bbox} spans {edge / 1000:.0f} km; the synthetic archive covers at most "
            f"{MAX_AOI_EDGE_M / 1000:.0f} km per side: give a smaller AOI"
        )
