"""Find Sentinel-2 L2A acquisitions in a STAC catalogue and read them onto a target grid.

`search_items` queries a STAC API (earth-search, Planetary Computer, CDSE, a local pgstac API),
a static catalogue (collection.json with item links, file:// or s3://) or a given list of items
by AOI, time range and cloud cover. `load_stack` reads the bands and SCL of the items as a
dask-backed xarray Dataset on the target grid (EPSG:3035 at 10 m by default, or `native` UTM)
with odc-stac; variables are named by band id (B02 … SCL) whatever the provider calls the assets.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pystac
import rasterio
import xarray as xr
from rasterio.errors import RasterioIOError

from landstack.catalog.grid import Aoi
from landstack.pipelines import s2
from landstack.pipelines.errors import AssetReadError, ConfigError, EmptySearchError, MissingAssetError
from landstack.pipelines.settings import Settings, get_settings
from landstack.storage import S3Options, gdal_env, open_url

DEFAULT_COLLECTION = "sentinel-2-l2a"
DEFAULT_MAX_CLOUD = 80.0
NATIVE = "native"


_log = logging.getLogger(__name__)


def _as_datetime(d: dt.date | dt.datetime | str, end: bool = False) -> dt.datetime:
    if isinstance(d, str):
        d = dt.datetime.fromisoformat(d) if "T" in d else dt.date.fromisoformat(d)
    if isinstance(d, dt.datetime):
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
    t = dt.time(23, 59, 59, 999999) if end else dt.time(0)
    return dt.datetime.combine(d, t, tzinfo=dt.UTC)


def _intersects(bbox: Sequence[float] | None, other: Sequence[float]) -> bool:
    if bbox is None:
        return True
    return not (bbox[2] < other[0] or bbox[0] > other[2] or bbox[3] < other[1] or bbox[1] > other[3])


def _filter(
    items: Iterable[pystac.Item], lonlat: Sequence[float], t0: dt.datetime, t1: dt.datetime, max_cloud: float
) -> list[pystac.Item]:
    out = []
    for it in items:
        when = it.datetime or _as_datetime(str(it.properties.get("start_datetime")))
        cloud = float(it.properties.get("eo:cloud_cover", 0.0))
        if t0 <= when <= t1 and cloud < max_cloud and _intersects(it.bbox, lonlat):
            out.append(it)
    return out


def read_static_items(catalog_href: str, settings: Settings | None = None) -> list[pystac.Item]:
    """Every item linked (rel=item, recursively via rel=child) from a static collection or catalog."""
    settings = settings or get_settings()
    try:
        with open_url(catalog_href, "rb", settings.s3()) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise EmptySearchError(
            f"cannot read STAC catalogue {catalog_href}: {e}; give a collection.json URL"
        ) from e
    base = posixpath.dirname(catalog_href)
    items: list[pystac.Item] = []
    for link in doc.get("links", []):
        href = link["href"]
        if not ("://" in href or href.startswith("/")):
            href = posixpath.normpath(posixpath.join(base.split("://", 1)[-1], href))
            href = f"{catalog_href.split('://', 1)[0]}://{href}" if "://" in catalog_href else href
        if link.get("rel") == "item":
            try:
                with open_url(href, "rb", settings.s3()) as f:
                    items.append(pystac.Item.from_dict(json.load(f)))
            except (OSError, json.JSONDecodeError) as e:
                raise EmptySearchError(f"cannot read STAC item {href} linked from {catalog_href}: {e}") from e
        elif link.get("rel") == "child":
            items.extend(read_static_items(href, settings))
    return items


def search_items(
    aoi: Aoi,
    start: dt.date | dt.datetime | str,
    end: dt.date | dt.datetime | str,
    *,
    api_url: str | None = None,
    catalog_href: str | None = None,
    items: Iterable[pystac.Item | dict[str, Any]] | None = None,
    collection: str | None = DEFAULT_COLLECTION,
    max_cloud: float = DEFAULT_MAX_CLOUD,
    settings: Settings | None = None,
) -> list[pystac.Item]:
    """L2A items over the AOI between start and end (inclusive) with cloud cover < max_cloud %.

    Exactly one source: a STAC API URL, a static catalogue href, or an item list. Items are
    returned sorted by time. Raises EmptySearchError when nothing matches.
    """
    t0, t1 = _as_datetime(start), _as_datetime(end, end=True)
    if t1 < t0:
        raise ConfigError(f"time range {start} .. {end} is empty: the end is before the start")
    lonlat = aoi.to_crs("EPSG:4326")
    if sum(x is not None for x in (api_url, catalog_href, items)) != 1:
        raise ConfigError("give exactly one of api_url, catalog_href or items to search")
    if api_url is not None:
        source = f"STAC API {api_url} collection {collection}"
        found = _search_api(api_url, collection, lonlat, t0, t1, max_cloud)
    elif catalog_href is not None:
        source = f"static catalogue {catalog_href}"
        found = _filter(read_static_items(catalog_href, settings), lonlat, t0, t1, max_cloud)
    else:
        assert items is not None
        source = "the given items"
        parsed = [i if isinstance(i, pystac.Item) else pystac.Item.from_dict(i) for i in items]
        found = _filter(parsed, lonlat, t0, t1, max_cloud)
    if not found:
        raise EmptySearchError(
            f"no Sentinel-2 L2A item with cloud cover < {max_cloud:g} % for AOI {aoi} between "
            f"{t0.date()} and {t1.date()} in {source}; widen the AOI or time range or raise the cloud limit"
        )
    return sorted(found, key=lambda i: (i.datetime or t0, i.id))


def _search_api(
    api_url: str,
    collection: str | None,
    lonlat: Sequence[float],
    t0: dt.datetime,
    t1: dt.datetime,
    max_cloud: float,
) -> list[pystac.Item]:
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(api_url)
        search = client.search(
            collections=[collection] if collection else None,
            bbox=list(lonlat),
            datetime=[t0, t1],
            query={"eo:cloud_cover": {"lt": max_cloud}},
            limit=100,
        )
        return list(search.items())
    except (APIError, OSError, ValueError) as e:
        raise EmptySearchError(
            f"STAC API search at {api_url} failed: {e}; check the URL and collection id"
        ) from e


def required_assets(items: Sequence[pystac.Item], bands: Sequence[str], provider: str) -> None:
    """Raise MissingAssetError naming the first item and asset key that is absent."""
    for it in items:
        for band in bands:
            key = s2.asset_key(band, provider)
            if key not in it.assets:
                raise MissingAssetError(
                    f"item {it.id} has no asset {key!r} (band {band}); it has {sorted(it.assets)}; "
                    f"drop the item or pick the matching provider naming ({sorted(s2.PROVIDERS)})"
                )


_CONFIGURED: dict[str, S3Options] = {}  # the S3 options set by configure_gdal


def _gdal_env() -> Any:
    """The rasterio environment configure_gdal set up (thread-local: enter it in each thread)."""
    return gdal_env(_CONFIGURED.get("s3"))


def _probe(href: str) -> str | None:
    try:
        with _gdal_env(), rasterio.open(href) as ds:
            ds.read(1, window=((0, 1), (0, 1)))
    except (RasterioIOError, rasterio.errors.RasterioError) as e:
        return f"{href}: {e}"
    return None


def check_hrefs(items: Sequence[pystac.Item], keys: Sequence[str], workers: int = 8) -> None:
    """Open the header (and first pixel) of every asset; raise AssetReadError naming a bad href."""
    hrefs = [it.assets[k].get_absolute_href() or it.assets[k].href for it in items for k in keys]
    with ThreadPoolExecutor(workers) as pool:
        for problem in pool.map(_probe, hrefs):
            if problem:
                raise AssetReadError(
                    f"cannot read COG {problem}; the file is corrupt or unreachable: fix or remove the item"
                )


def configure_gdal(settings: Settings | None = None) -> None:
    """Point GDAL reads (all threads, odc-stac's loaders included) at the configured S3 store."""
    import odc.stac

    s3 = (settings or get_settings()).s3()
    _CONFIGURED["s3"] = s3
    odc.stac.configure_rio(cloud_defaults=True, aws=s3.aws_session_options(), **s3.gdal_config())


def _solar_date(item: pystac.Item) -> dt.date:
    lon = (item.bbox[0] + item.bbox[2]) / 2 if item.bbox else 0.0
    assert item.datetime is not None
    return (item.datetime + dt.timedelta(hours=lon / 15)).date()


def _offsets(items: Sequence[pystac.Item], times: np.ndarray) -> np.ndarray:
    by_day: dict[dt.date, int] = {}
    for it in items:
        applied = bool(it.properties.get("earthsearch:boa_offset_applied", False))
        by_day[_solar_date(it)] = s2.boa_offset(it.properties.get("s2:processing_baseline"), applied)
    out = np.zeros(times.size, np.int32)
    for i, t in enumerate(times.astype("datetime64[s]").tolist()):
        out[i] = by_day.get(t.date(), by_day.get((t - dt.timedelta(days=1)).date(), 0))
    return out


def load_stack(
    items: Sequence[pystac.Item],
    bands: Sequence[str],
    *,
    aoi: Aoi | None = None,
    crs: str = "EPSG:3035",
    resolution: float = 10.0,
    resampling: str | dict[str, str] = "nearest",
    chunks: int = 256,
    provider: str | None = None,
    check: bool = True,
) -> xr.Dataset:
    """Bands + SCL of the items as a lazy (time, y, x) uint16/uint8 Dataset on the target grid.

    `crs="native"` keeps the items' UTM grid. The coordinate `boa_offset` (per time step) carries
    the L2A digital-number offset of each acquisition's processing baseline.
    """
    import odc.stac
    from odc.geo.geobox import GeoBox

    if not items:
        raise EmptySearchError("no items to load; run a search first")
    provider = provider or s2.detect_provider(list(items[0].assets))
    wanted = list(dict.fromkeys([*bands, "SCL"]))
    required_assets(items, wanted, provider)
    keys = [s2.asset_key(b, provider) for b in wanted]
    if check:
        check_hrefs(items, keys)
    if crs == NATIVE:
        codes = {items[0].properties.get("proj:code") or f"EPSG:{items[0].properties.get('proj:epsg')}"}
        codes |= {i.properties.get("proj:code") or f"EPSG:{i.properties.get('proj:epsg')}" for i in items}
        if len(codes) != 1:
            raise ConfigError(f"items span several CRS {sorted(codes)}; give a target crs such as EPSG:3035")
        crs = codes.pop()
    rs: dict[str, str] = (
        {s2.asset_key(b, provider): resampling for b in bands}
        if isinstance(resampling, str)
        else dict(resampling)
    )
    rs[s2.asset_key("SCL", provider)] = "nearest"
    kw: dict[str, Any] = {}
    if aoi is not None:
        kw["geobox"] = GeoBox.from_bbox(aoi.to_crs(crs), crs=crs, resolution=resolution)
    else:
        kw.update(crs=crs, resolution=resolution)
    try:
        ds = odc.stac.load(
            items,
            bands=keys,
            groupby="solar_day",
            resampling=rs,
            chunks={"time": 1, "x": chunks, "y": chunks},
            **kw,
        )
    except (RasterioIOError, ValueError, KeyError) as e:
        raise AssetReadError(f"cannot load items {[i.id for i in items[:3]]}…: {e}") from e
    ds = ds.rename({k: b for k, b in zip(keys, wanted, strict=True) if k != b})
    return ds.assign_coords(boa_offset=("time", _offsets(items, ds.time.values)))


def load_reference_year(
    aoi: Aoi,
    year: int,
    bands: Sequence[str],
    *,
    api_url: str | None = None,
    catalog_href: str | None = None,
    collection: str | None = None,
    max_cloud: float = DEFAULT_MAX_CLOUD,
    crs: str = "EPSG:3035",
    chunks: int = 256,
) -> xr.Dataset:
    """The lazy stack of `bands` + SCL over the AOI for a reference year ± 3 months (what the
    54-step series needs), from a STAC API or a static catalogue."""
    kwargs: dict[str, Any] = {"max_cloud": max_cloud}
    if collection:
        kwargs["collection"] = collection
    items = search_items(
        aoi, f"{year - 1}-10-01", f"{year + 1}-03-31", api_url=api_url, catalog_href=catalog_href, **kwargs
    )
    _log.info("%d acquisitions for %s", len(items), aoi)
    configure_gdal()
    return load_stack(items, bands, aoi=aoi, crs=crs, chunks=chunks)
