"""Write a synthetic Sentinel-2 L2A archive: COGs per band and date, STAC items, truth layers, samples.

Layout under `prefix` in the object store (asset keys in the provider's style):

    collection.json                 static STAC collection linking every item
    items/<item id>.json            one STAC item per acquisition
    <item id>/<B02|…|SCL>.tif       one COG per band at native resolution (10/20/60 m), UTM
    truth/landcover.tif             CLCplus classes 1..11 (10 m, nodata 255)
    truth/imperviousness.tif        imperviousness 0..100 % (nodata 255)
    truth/builtup.tif               0 none, 1 residential, 2 non-residential (nodata 255)
    truth/builtup-area.tif          built-up surface per 10 m cell in m² (0 or 100): bands S, NRES
    truth/impervious-classes.tif    0 bare/other, 1 impervious, 2 vegetation, 3 water (CISC classes)
    truth/objects.tif               parcel id (int32)
    truth/samples.parquet           labelled points: x, y, label, group, imperviousness, builtup
    scene.json                      the AOI, grid, seed and file list
"""

from __future__ import annotations

import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pystac
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from landstack.catalog.grid import Aoi, TileGrid
from landstack.catalog.items import Asset, FileInfo, build_item
from landstack.catalog.mgrs import mgrs_tile_at
from landstack.pipelines import s2
from landstack.pipelines.synth import clouds, phenology
from landstack.pipelines.synth.scene import (
    BUILTUP_NON_RESIDENTIAL,
    BUILTUP_RESIDENTIAL,
    CLASSES,
    Scene,
    make_scene,
    sample_points,
    smooth_noise,
)
from landstack.storage import ObjectStore

COLLECTION_ID = "sentinel-2-l2a-synthetic"
_COSPAR = {"sentinel-2a": "2015-028A", "sentinel-2b": "2017-013A"}
_VEG_CLASSES = np.array([2, 3, 4, 5, 6, 7])


@dataclass(frozen=True)
class SynthConfig:
    """What to generate: AOI, date range, seed, provider naming style and archive realism."""

    aoi: Aoi
    start: dt.date
    end: dt.date
    seed: int = 0
    provider: str = "earth-search"
    revisit_days: int = 5
    missing_fraction: float = 0.08
    points_per_class: int = 100
    collection_id: str = COLLECTION_ID
    workers: int = 2
    noise: float = 0.006
    compress: str = "zstd"  # the public archives use deflate (slower to write); GDAL reads both


@dataclass
class SynthResult:
    """What was written (keys relative to the store root)."""

    prefix: str
    collection_key: str
    item_keys: list[str] = field(default_factory=list)
    truth_keys: dict[str, str] = field(default_factory=dict)
    samples_key: str = ""
    scene: Scene | None = None


def acquisition_dates(cfg: SynthConfig) -> list[tuple[int, dt.date]]:
    """(index, date) of the acquisitions kept; a few are missing, like real gaps in the archive."""
    rng = np.random.default_rng([cfg.seed, 2])
    out, day, i = [], cfg.start, 0
    while day <= cfg.end:
        if rng.random() >= cfg.missing_fraction:
            out.append((i, day))
        day += dt.timedelta(days=cfg.revisit_days)
        i += 1
    return out


def _cog_bytes(
    arr: np.ndarray,
    crs: str,
    transform: Affine,
    nodata: float | None,
    compress: str = "zstd",
    descriptions: tuple[str, ...] = (),
) -> bytes:
    bands = arr if arr.ndim == 3 else arr[None]
    _, h, w = bands.shape
    prof: dict[str, Any] = {
        "driver": "COG",
        "width": w,
        "height": h,
        "count": bands.shape[0],
        "dtype": arr.dtype.name,
        "crs": crs,
        "transform": transform,
        "compress": compress,
        "predictor": 2,
        "level": 1,
        "blocksize": 512 if max(h, w) > 512 else 256,
        "overview_resampling": "nearest",
    }
    if nodata is not None:
        prof["nodata"] = nodata
    with MemoryFile() as mf:
        with mf.open(**prof) as ds:
            ds.write(bands)
            for i, d in enumerate(descriptions, start=1):
                ds.set_band_description(i, d)
        return bytes(mf.read())


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    c, h, w = a.shape
    return a.reshape(c, h // k, k, w // k, k).mean(axis=(2, 4))


_I10 = [i for i, b in enumerate(s2.REFLECTANCE_BANDS) if s2.BANDS[b].resolution == 10]
_I20 = [i for i, b in enumerate(s2.REFLECTANCE_BANDS) if s2.BANDS[b].resolution != 10]


def _layer(static: dict[str, np.ndarray], spec: np.ndarray, idx: list[int]) -> np.ndarray:
    """Surface reflectance (len(idx), h, w) of the units mixed with the sealed part."""
    out = spec[idx][:, static["unit_map"]]
    out *= static["open"]
    out += static["sealed"]
    return out


class _Renderer:
    """Static per-scene state and the rendering of one acquisition.

    10 m bands are rendered at 10 m; the 20 m and 60 m bands at 20 m from 20 m aggregates of the
    static layers (60 m is the 3x3 mean), which keeps the cost per acquisition near 6 bands at 10 m.
    """

    def __init__(self, scene: Scene, cfg: SynthConfig) -> None:
        self.scene, self.cfg = scene, cfg
        rng = np.random.default_rng([cfg.seed, 3])
        h, w = scene.shape
        n = scene.parcel_class.size
        urban = scene.parcel_class[scene.objects] == 1
        trees = urban & (scene.base_class == 3)
        unit_map = (scene.objects + n * trees).astype(np.int32)
        unit_class = np.concatenate([np.where(scene.parcel_class == 1, 6, scene.parcel_class), np.full(n, 3)])
        self.params = phenology.UnitParams.draw(unit_class.astype(np.uint8), rng)
        f = scene.imperviousness.astype(np.float32) / 100
        kind = scene.parcel_builtup[scene.objects]
        sealed = np.empty((12, h, w), np.float32)
        sealed[:] = np.asarray(phenology.SEALED["road"], np.float32)[:, None, None]
        for code, name in (
            (BUILTUP_RESIDENTIAL, "residential"),
            (BUILTUP_NON_RESIDENTIAL, "non_residential"),
        ):
            m = kind == code
            sealed[:, m] = np.asarray(phenology.SEALED[name], np.float32)[:, None]
        sealed *= f
        texture = (0.96 + 0.08 * smooth_noise((h, w), 2, rng)).astype(np.float32)
        self.s10 = {"unit_map": unit_map, "open": 1 - f, "sealed": sealed[_I10], "texture": texture}
        self.s20 = {
            "unit_map": np.ascontiguousarray(unit_map[::2, ::2]),
            "open": _block_mean((1 - f)[None], 2)[0],
            "sealed": _block_mean(sealed[_I20], 2),
            "texture": _block_mean(texture[None], 2)[0],
        }
        self.land = scene.landcover != 10
        self.water20 = scene.landcover[::2, ::2] == 10

    def render(self, index: int, day: dt.date) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float]]:
        """Reflectance per band (native resolution), SCL (20 m) and SCL statistics of one acquisition."""
        rng = np.random.default_rng([self.cfg.seed, 100, index])
        h, w = self.scene.shape
        doy = float(day.timetuple().tm_yday)
        spec = phenology.unit_spectra(self.params, doy).T.astype(np.float32)  # (12, units)
        snow = None
        if (doy > 335 or doy < 60) and rng.random() < 0.35:
            snow = np.clip(smooth_noise((h, w), 25, rng) * 1.6 - 0.3, 0, 1) * self.land
        sky = clouds.draw_sky((h // 2, w // 2), rng)
        noise = np.float32(self.cfg.noise)
        snow_spec, cloud_spec = phenology.snow_spectrum(), phenology.CLOUD
        layers = {}
        for res, static, idx in ((10, self.s10, _I10), (20, self.s20, _I20)):
            refl = _layer(static, spec, idx)
            k = 2 if res == 10 else 1
            op = np.repeat(np.repeat(sky.opacity, 2, 0), 2, 1) if k == 2 else sky.opacity
            shade = np.where(
                np.repeat(np.repeat(sky.shadow, 2, 0), 2, 1) if k == 2 else sky.shadow, 0.35, 1.0
            )
            sn = None if snow is None else (snow if k == 2 else snow[::2, ::2])
            for j, i in enumerate(idx):
                band = refl[j]
                if sn is not None:
                    band += sn * (snow_spec[i] - band)
                band *= static["texture"]
                band += rng.standard_normal(band.shape, dtype=np.float32) * noise
                band += op * (cloud_spec[i] - band)
                band *= shade
                np.clip(band, 0.0001, 1.5, out=band)
            layers[res] = refl
        r10, r20 = layers[10], layers[20]
        agg = _block_mean(r10[[1, 2, 3]], 2)  # B03, B04, B08 at 20 m for the scene classification
        scl = self._scl(agg[0], agg[1], agg[2], r20[_I20.index(10)], sky, rng)
        r60 = _block_mean(r20[[_I20.index(0), _I20.index(9)]], 3)
        bands: dict[str, np.ndarray] = {}
        for j, i in enumerate(_I10):
            bands[s2.REFLECTANCE_BANDS[i]] = r10[j]
        for j, i in enumerate(_I20):
            b = s2.REFLECTANCE_BANDS[i]
            bands[b] = r20[j] if s2.BANDS[b].resolution == 20 else r60[0 if b == "B01" else 1]
        n = scl.size
        stats = {f"scl_{k}": float((scl == k).sum() * 100 / n) for k in range(12)}
        return bands, scl, stats

    def _scl(
        self,
        green: np.ndarray,
        red: np.ndarray,
        nir: np.ndarray,
        swir: np.ndarray,
        sky: clouds.Sky,
        rng: np.random.Generator,
    ) -> np.ndarray:
        ndvi = (nir - red) / (nir + red + 1e-6)
        ndsi = (green - swir) / (green + swir + 1e-6)
        scl = np.where(ndvi > 0.35, clouds.SCL_VEG, clouds.SCL_NOT_VEG).astype(np.uint8)
        scl[self.water20 & (nir < 0.05)] = clouds.SCL_WATER
        scl[(ndsi > 0.4) & (green > 0.3)] = clouds.SCL_SNOW
        u = rng.random(scl.shape, dtype=np.float32)
        scl[u < 0.002] = clouds.SCL_DARK
        scl[(u >= 0.002) & (u < 0.006)] = clouds.SCL_UNCLASSIFIED
        scl[sky.shadow] = clouds.SCL_SHADOW
        cloudy = sky.scl_cloud > 0
        scl[cloudy] = sky.scl_cloud[cloudy]
        return scl


def _item_id(scene: Scene, index: int, day: dt.date) -> str:
    """An id in the providers' style, on the real Sentinel-2 tile of the scene's north-west corner."""
    x0, _y0, _x1, y1 = scene.bounds
    tile = mgrs_tile_at(x0, y1 - 1.0, scene.crs)
    return f"S2{'A' if index % 2 == 0 else 'B'}_{tile.id}_{day:%Y%m%d}_0_L2A"


def _item(
    cfg: SynthConfig,
    scene: Scene,
    index: int,
    day: dt.date,
    files: dict[str, tuple[str, FileInfo]],
    stats: dict[str, float],
    offset: int,
    baseline: str,
) -> pystac.Item:
    platform = "sentinel-2a" if index % 2 == 0 else "sentinel-2b"
    item_id = _item_id(scene, index, day)
    tile = item_id.split("_")[1]
    when = dt.datetime.combine(day, dt.time(10, 20, 31), tzinfo=dt.UTC)
    cloud = stats["scl_8"] + stats["scl_9"] + stats["scl_10"]
    props: dict[str, Any] = {
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": round(cloud, 4),
        "sat:orbit_state": "descending",  # Sentinel-2 images the day side on descending passes
        "sat:platform_international_designator": _COSPAR[platform],
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": baseline,
        "s2:mgrs_tile": tile,
        "s2:product_uri": (
            f"S2{platform[-1].upper()}_MSIL2A_{day:%Y%m%d}T102031_N{baseline.replace('.', '')}_T{tile}.SAFE"
        ),
        "s2:degraded_msi_data_percentage": 0.0,
        "s2:nodata_pixel_percentage": 0.0,
        "s2:saturated_defective_pixel_percentage": 0.0,
        "s2:dark_features_percentage": round(stats["scl_2"], 4),
        "s2:cloud_shadow_percentage": round(stats["scl_3"], 4),
        "s2:vegetation_percentage": round(stats["scl_4"], 4),
        "s2:not_vegetated_percentage": round(stats["scl_5"], 4),
        "s2:water_percentage": round(stats["scl_6"], 4),
        "s2:unclassified_percentage": round(stats["scl_7"], 4),
        "s2:medium_proba_clouds_percentage": round(stats["scl_8"], 4),
        "s2:high_proba_clouds_percentage": round(stats["scl_9"], 4),
        "s2:thin_cirrus_percentage": round(stats["scl_10"], 4),
        "s2:snow_ice_percentage": round(stats["scl_11"], 4),
    }
    if cfg.provider == "earth-search":
        props["earthsearch:boa_offset_applied"] = False
    grid = TileGrid(scene.crs, scene.transform, scene.shape)
    h, w = scene.shape
    t = scene.transform
    assets: dict[str, Asset] = {}
    for band, (href, info) in files.items():
        meta = s2.BANDS[band]
        k = meta.resolution // 10
        res = float(meta.resolution)
        asset = Asset(
            href,
            pystac.MediaType.COG,
            ["data"],
            title=meta.description,
            file=info,
            grid=TileGrid(scene.crs, Affine(res, 0.0, t.c, 0.0, -res, t.f), (h // k, w // k)),
        )
        if band == "SCL":
            asset.fields["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": res}]
        else:
            asset.roles = ["data", "reflectance"]
            asset.fields["eo:bands"] = [
                {
                    "name": band,
                    **({"common_name": meta.common_name} if meta.common_name else {}),
                    "description": meta.description,
                    "center_wavelength": meta.center_wavelength,
                    "full_width_half_max": meta.full_width_half_max,
                }
            ]
            asset.fields["raster:bands"] = [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "spatial_resolution": res,
                    "scale": 1 / s2.QUANTIFICATION_VALUE,
                    "offset": offset / s2.QUANTIFICATION_VALUE,
                }
            ]
        assets[s2.asset_key(band, cfg.provider)] = asset
    return build_item(
        item_id, grid=grid, datetime=when, properties=props, assets=assets, collection=cfg.collection_id
    )


def _write_acquisition(
    store: ObjectStore,
    prefix: str,
    cfg: SynthConfig,
    scene: Scene,
    renderer: _Renderer,
    index: int,
    day: dt.date,
) -> pystac.Item:
    bands, scl, stats = renderer.render(index, day)
    baseline = s2.processing_baseline_for(day.year, day.month, day.day)
    offset = s2.boa_offset(baseline)
    files: dict[str, tuple[str, FileInfo]] = {}
    t = scene.transform
    epsg_crs = scene.crs
    item_id = _item_id(scene, index, day)
    for band, refl in {**bands, "SCL": scl}.items():
        res = s2.BANDS[band].resolution
        transform = Affine(float(res), 0.0, t.c, 0.0, -float(res), t.f)
        arr = scl if band == "SCL" else s2.to_dn(refl, offset)
        key = f"{prefix}/{item_id}/{band}.tif"
        data = _cog_bytes(arr, epsg_crs, transform, 0, cfg.compress)
        files[band] = (store.put_bytes(key, data), FileInfo.of_bytes(data))
    item = _item(cfg, scene, index, day, files, stats, offset, baseline)
    item.set_self_href(store.href(f"{prefix}/items/{item.id}.json"))
    return item


def _item_doc(item: pystac.Item, collection_href: str) -> dict[str, Any]:
    doc = item.to_dict(include_self_link=False, transform_hrefs=False)
    doc["links"] = [
        {"rel": "self", "href": item.get_self_href(), "type": "application/geo+json"},
        {"rel": "collection", "href": collection_href, "type": "application/json"},
        {"rel": "parent", "href": collection_href, "type": "application/json"},
        {"rel": "root", "href": collection_href, "type": "application/json"},
    ]
    return doc


def collection_doc(cfg: SynthConfig, items: list[pystac.Item], self_href: str) -> dict[str, Any]:
    """A static STAC collection (1.1.0) linking the items by relative href."""
    lon0 = min(i.bbox[0] for i in items if i.bbox)
    lat0 = min(i.bbox[1] for i in items if i.bbox)
    lon1 = max(i.bbox[2] for i in items if i.bbox)
    lat1 = max(i.bbox[3] for i in items if i.bbox)
    times = sorted(i.datetime for i in items if i.datetime)
    links = [
        {"rel": "self", "href": self_href, "type": "application/json"},
        {"rel": "root", "href": self_href, "type": "application/json"},
    ]
    links += [{"rel": "item", "href": f"./items/{i.id}.json", "type": "application/geo+json"} for i in items]
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": cfg.collection_id,
        "title": "Synthetic Sentinel-2 L2A",
        "description": (
            "Synthetic Sentinel-2 L2A acquisitions generated from a known ground truth "
            f"(seed {cfg.seed}, asset names in the {cfg.provider} style)."
        ),
        "license": "CC0-1.0",
        "extent": {
            "spatial": {"bbox": [[lon0, lat0, lon1, lat1]]},
            "temporal": {"interval": [[times[0].isoformat(), times[-1].isoformat()]]},
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
        },
        "links": links,
    }


def impervious_classes(landcover: np.ndarray) -> np.ndarray:
    """The 4 impervious classes of a CLCplus land-cover map: sealed → 1, vegetated → 2, water → 3."""
    out = np.zeros(landcover.shape, np.uint8)
    out[landcover == 1] = 1
    out[np.isin(landcover, [2, 3, 4, 5, 6, 7, 8])] = 2
    out[landcover == 10] = 3
    out[landcover == 255] = 255
    return out


def _write_truth(
    store: ObjectStore, prefix: str, scene: Scene, cfg: SynthConfig
) -> tuple[dict[str, str], str]:
    area = np.stack([np.where(scene.builtup > 0, 100, 0), np.where(scene.builtup == 2, 100, 0)])
    layers: dict[str, tuple[np.ndarray, float | None, tuple[str, ...]]] = {
        "landcover": (scene.landcover, 255, ()),
        "imperviousness": (scene.imperviousness, 255, ("IMD",)),
        "builtup": (scene.builtup, 255, ()),
        "builtup-area": (area.astype(np.uint8), 255, ("S", "NRES")),
        "impervious-classes": (impervious_classes(scene.landcover), 255, ()),
        "objects": (scene.objects, None, ()),
    }
    keys: dict[str, str] = {}
    for name, (arr, nodata, names) in layers.items():
        key = f"{prefix}/truth/{name}.tif"
        store.put_bytes(key, _cog_bytes(arr, scene.crs, scene.transform, nodata, cfg.compress, names))
        keys[name] = key
    pts = pd.DataFrame(sample_points(scene, cfg.points_per_class, cfg.seed))
    pts.attrs["crs"] = scene.crs
    buf = io.BytesIO()
    pts.to_parquet(buf, index=False)
    samples_key = f"{prefix}/truth/samples.parquet"
    store.put_bytes(samples_key, buf.getvalue())
    return keys, samples_key


def write_archive(cfg: SynthConfig, store: ObjectStore, prefix: str = "synthetic") -> SynthResult:
    """Generate the scene and write the whole archive under `prefix`; deterministic per seed."""
    prefix = prefix.strip("/")
    scene = make_scene(cfg.aoi, cfg.seed)
    renderer = _Renderer(scene, cfg)
    dates = acquisition_dates(cfg)
    with rasterio.Env(GDAL_NUM_THREADS=1), ThreadPoolExecutor(max(1, cfg.workers)) as pool:
        items = list(pool.map(lambda a: _write_acquisition(store, prefix, cfg, scene, renderer, *a), dates))
    collection_key = f"{prefix}/collection.json"
    collection_href = store.href(collection_key)
    item_keys = []
    for item in items:
        key = f"{prefix}/items/{item.id}.json"
        store.put_json(key, _item_doc(item, collection_href))
        item_keys.append(key)
    truth_keys, samples_key = _write_truth(store, prefix, scene, cfg)
    store.put_json(collection_key, collection_doc(cfg, items, collection_href))
    store.put_json(
        f"{prefix}/scene.json",
        {
            "crs": scene.crs,
            "transform": list(scene.transform)[:6],
            "shape": list(scene.shape),
            "aoi": {"bbox": list(cfg.aoi.bbox), "crs": cfg.aoi.crs},
            "start": cfg.start.isoformat(),
            "end": cfg.end.isoformat(),
            "seed": cfg.seed,
            "provider": cfg.provider,
            "classes": {str(k): v for k, v in CLASSES.items()},
            "items": len(items),
            "truth": {k: v.removeprefix(prefix + "/") for k, v in truth_keys.items()},
            "samples": samples_key.removeprefix(prefix + "/"),
        },
    )
    return SynthResult(prefix, collection_key, item_keys, truth_keys, samples_key, scene)
