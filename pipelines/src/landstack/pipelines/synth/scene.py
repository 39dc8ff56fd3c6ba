"""The ground truth of a synthetic scene: parcels, land cover, imperviousness and built-up.

The AOI is cut into rectangular parcels (fields, forest stands, lakes, urban blocks) by recursive
splitting; each parcel gets one CLCplus class (1..11) and its own phenology parameters. Urban blocks
carry a sub-pixel imperviousness field and are residential or non-residential; roads cross the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from affine import Affine

from landstack.catalog import get_layer
from landstack.catalog.grid import Aoi, TileGrid, utm_crs
from landstack.pipelines.errors import ConfigError

# The 11 land-cover classes of the CLCplus Backbone style RAS layer (codes 1..11; the catalogue
# is their one source of names).
CLASSES: dict[int, str] = {
    c.value: c.name for c in get_layer("clcplus-backbone-ras")[1].classes if 1 <= c.value <= 11
}
# Share of parcels per class: every class well represented, so a classifier sees all of them.
_CLASS_WEIGHTS = np.array([0.13, 0.09, 0.10, 0.07, 0.08, 0.11, 0.15, 0.06, 0.07, 0.07, 0.07])
BUILTUP_NONE, BUILTUP_RESIDENTIAL, BUILTUP_NON_RESIDENTIAL = 0, 1, 2
SEALED_THRESHOLD = 50  # imperviousness % from which a pixel is class 1 (Sealed)
GRID_STEP = 60.0  # the coarsest band resolution: every band grid nests in it


@dataclass
class Scene:
    """Ground truth on the 10 m UTM grid of the AOI."""

    crs: str
    transform: Affine
    landcover: np.ndarray  # uint8, CLCplus codes 1..11
    imperviousness: np.ndarray  # uint8, 0..100 %
    builtup: np.ndarray  # uint8, 0 none, 1 residential, 2 non-residential
    objects: np.ndarray  # int32 parcel id per pixel
    parcel_class: np.ndarray  # uint8 base class per parcel (urban blocks: 1)
    parcel_builtup: np.ndarray  # uint8 built-up kind per parcel
    base_class: np.ndarray  # uint8 per pixel: the cover of the non-sealed part
    seed: int
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.landcover.shape[0]), int(self.landcover.shape[1]))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        h, w = self.shape
        x0, y0 = self.transform.c, self.transform.f
        return (x0, y0 - h * 10.0, x0 + w * 10.0, y0)


def scene_grid(aoi: Aoi) -> tuple[str, Affine, tuple[int, int]]:
    """UTM CRS, 10 m transform and shape of an AOI, snapped outwards to the 60 m grid."""
    lon0, lat0, lon1, lat1 = aoi.to_crs("EPSG:4326")
    crs = utm_crs((lon0 + lon1) / 2, (lat0 + lat1) / 2)
    grid = TileGrid.from_bounds(aoi.to_crs(crs), 10.0, crs, align=GRID_STEP)
    h, w = grid.shape
    if w < 60 or h < 60:
        raise ConfigError(f"AOI {aoi} is smaller than 600 m x 600 m; give a larger bbox")
    if w * h > 30_000_000:
        raise ConfigError(f"AOI {aoi} has {w}x{h} pixels at 10 m; split it (at most 30 Mpx per archive)")
    return crs, grid.transform, (h, w)


def _parcels(h: int, w: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Rectangles (r0, r1, c0, c1) tiling the grid, sides mostly 12..60 px."""
    todo, done = [(0, h, 0, w)], []
    while todo:
        r0, r1, c0, c1 = todo.pop()
        hh, ww = r1 - r0, c1 - c0
        limit = rng.integers(24, 70)
        if max(hh, ww) <= limit:
            done.append((r0, r1, c0, c1))
            continue
        if hh >= ww:
            cut = r0 + int(hh * rng.uniform(0.3, 0.7))
            todo += [(r0, cut, c0, c1), (cut, r1, c0, c1)]
        else:
            cut = c0 + int(ww * rng.uniform(0.3, 0.7))
            todo += [(r0, r1, c0, cut), (r0, r1, cut, c1)]
    return done


def smooth_noise(shape: tuple[int, int], scale: int, rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated noise in [0, 1] with features of about `scale` pixels."""
    from scipy.ndimage import zoom

    ch, cw = max(2, shape[0] // scale + 2), max(2, shape[1] // scale + 2)
    coarse = rng.random((ch, cw), dtype=np.float32)
    fine = zoom(coarse, (shape[0] / ch * 1.0001, shape[1] / cw * 1.0001), order=1, prefilter=False)
    return np.ascontiguousarray(fine[: shape[0], : shape[1]], dtype=np.float32)


def make_scene(aoi: Aoi, seed: int = 0) -> Scene:
    """Draw the ground truth of an AOI; the same seed gives the same scene."""
    crs, transform, (h, w) = scene_grid(aoi)
    rng = np.random.default_rng([seed, 1])
    rects = _parcels(h, w, rng)
    n = len(rects)
    objects = np.zeros((h, w), np.int32)
    for i, (r0, r1, c0, c1) in enumerate(rects):
        objects[r0:r1, c0:c1] = i + 1
    parcel_class = np.zeros(n + 1, np.uint8)
    parcel_class[1:] = rng.choice(np.arange(1, 12), size=n, p=_CLASS_WEIGHTS / _CLASS_WEIGHTS.sum())
    parcel_builtup = np.zeros(n + 1, np.uint8)
    urban = parcel_class == 1
    parcel_builtup[urban] = np.where(
        rng.random(int(urban.sum())) < 0.65, BUILTUP_RESIDENTIAL, BUILTUP_NON_RESIDENTIAL
    )

    pc = parcel_class[objects]
    pb = parcel_builtup[objects]
    # Urban blocks: buildings and paving (high) between gardens and street trees (low).
    texture = smooth_noise((h, w), 3, rng)
    imp = np.zeros((h, w), np.float32)
    res = pb == BUILTUP_RESIDENTIAL
    nres = pb == BUILTUP_NON_RESIDENTIAL
    imp[res] = np.clip(15 + 110 * texture[res] - 10, 0, 100)
    imp[nres] = np.clip(55 + 70 * texture[nres], 0, 100)
    base = pc.copy()
    garden_trees = smooth_noise((h, w), 6, rng) > 0.6
    base[pc == 1] = np.where(garden_trees[pc == 1], 3, 6).astype(np.uint8)

    # Roads: straight, 1-2 px wide, partly covering the pixels at their edges.
    for axis in (0, 1):
        size = h if axis == 0 else w
        for pos in rng.choice(np.arange(5, size - 5), size=max(1, size // 250), replace=False):
            width = float(rng.uniform(0.6, 1.8))
            for k in range(math.ceil(width) + 1):
                cover = float(np.clip(width - k, 0.0, 1.0)) * 100
                sl = (
                    (slice(pos + k, pos + k + 1), slice(None))
                    if axis == 0
                    else (slice(None), slice(pos + k, pos + k + 1))
                )
                water = pc[sl] == 10
                imp[sl] = np.where(water, imp[sl], np.maximum(imp[sl], cover))

    imperviousness = np.rint(imp).astype(np.uint8)
    landcover = np.where(imperviousness >= SEALED_THRESHOLD, 1, base).astype(np.uint8)
    builtup = np.where((pb > 0) & (imperviousness >= 30), pb, BUILTUP_NONE).astype(np.uint8)
    return Scene(
        crs=crs,
        transform=transform,
        landcover=landcover,
        imperviousness=imperviousness,
        builtup=builtup,
        objects=objects,
        parcel_class=parcel_class,
        parcel_builtup=parcel_builtup,
        base_class=base,
        seed=seed,
    )


def sample_points(scene: Scene, per_class: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Labelled points: pixel centres inside homogeneous 3x3 neighbourhoods, stratified by class.

    Returns columns x, y (scene CRS), row, col, label, group (parcel id), imperviousness, builtup.
    """
    rng = np.random.default_rng([seed, 7])
    lc, obj = scene.landcover, scene.objects
    same = np.ones(lc.shape, bool)
    same[[0, -1], :] = False
    same[:, [0, -1]] = False
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            shifted_lc = np.roll(np.roll(lc, dr, 0), dc, 1)
            shifted_obj = np.roll(np.roll(obj, dr, 0), dc, 1)
            same &= (shifted_lc == lc) & (shifted_obj == obj)
    rows, cols = [], []
    for cls in CLASSES:
        rr, cc = np.nonzero(same & (lc == cls))
        if rr.size == 0:
            rr, cc = np.nonzero(lc == cls)
        if rr.size == 0:
            continue
        pick = rng.choice(rr.size, size=min(per_class, rr.size), replace=False)
        rows.append(rr[pick])
        cols.append(cc[pick])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    t = scene.transform
    xs = t.c + (c + 0.5) * t.a
    ys = t.f + (r + 0.5) * t.e
    return {
        "x": np.asarray(xs, np.float64),
        "y": np.asarray(ys, np.float64),
        "row": r.astype(np.int32),
        "col": c.astype(np.int32),
        "label": lc[r, c].astype(np.int16),
        "group": obj[r, c].astype(np.int64),
        "imperviousness": scene.imperviousness[r, c].astype(np.int16),
        "builtup": scene.builtup[r, c].astype(np.int16),
    }
