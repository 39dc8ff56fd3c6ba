"""Quicklook PNG of a product tile: the layer colour-mapped from its spec, with a legend.

The raster is read decimated (from the COG's overviews), so a quicklook of a 100 km tile costs a
few MB whatever the tile size.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw, ImageFont
from rasterio.enums import Resampling

from landstack.catalog.spec import LayerSpec
from landstack.pipelines.products.cog import is_classified
from landstack.storage import ObjectStore

MAX_SIZE = 768
_LEGEND_W = 260
_ROW_H = 18


def _font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _hex(colour: str) -> tuple[int, int, int]:
    h = colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def colourise(values: np.ndarray, spec: LayerSpec) -> np.ndarray:
    """RGBA (H, W, 4) uint8 of a layer's values: class colours, ramp in between, nodata transparent."""
    rgba = np.zeros((*values.shape, 4), np.uint8)
    if spec.ramp is not None:
        stops = sorted(spec.ramp.stops)
        xs = np.array([s[0] for s in stops], float)
        cols = np.array([_hex(s[1]) for s in stops], float)
        v = values.astype(float)
        for k in range(3):
            rgba[..., k] = np.rint(np.interp(v, xs, cols[:, k])).astype(np.uint8)
        rgba[..., 3] = 255
    for cls in spec.classes:
        sel = values == cls.value
        rgba[sel] = (*_hex(cls.color), 0 if cls.nodata else 255)
    rgba[values == spec.nodata, 3] = 0
    return rgba


def _legend(spec: LayerSpec, present: set[int], height: int) -> Image.Image:
    img = Image.new("RGBA", (_LEGEND_W, height), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = _font()
    draw.text((8, 6), spec.code, fill=(0, 0, 0, 255), font=_font(14))
    y = 28
    if spec.ramp is not None and not is_classified(spec):
        lo, hi = spec.value_range or (spec.ramp.stops[0][0], spec.ramp.stops[-1][0])
        bar = np.linspace(lo, hi, 180)[None, :].repeat(14, axis=0)
        img.paste(Image.fromarray(colourise(bar, spec.model_copy(update={"classes": []}))), (8, y))
        draw.text((8, y + 16), f"{lo:g}", fill=(0, 0, 0, 255), font=font)
        draw.text((150, y + 16), f"{hi:g} {spec.unit or ''}", fill=(0, 0, 0, 255), font=font)
        y += 40
    for cls in spec.classes:
        if cls.value not in present and not is_classified(spec):
            continue
        if y + _ROW_H > height:
            break
        draw.rectangle((8, y, 22, y + 12), fill=(*_hex(cls.color), 255), outline=(80, 80, 80, 255))
        draw.text((28, y), f"{cls.value} {cls.name}"[:38], fill=(0, 0, 0, 255), font=font)
        y += _ROW_H
    return img


def render(path: str | Path, spec: LayerSpec, max_size: int = MAX_SIZE) -> bytes:
    """PNG bytes of a layer file (local path or GDAL-readable URL) with a legend panel."""
    with rasterio.open(path) as src:
        scale = max(src.width, src.height) / max_size
        shape = (max(1, round(src.height / max(scale, 1))), max(1, round(src.width / max(scale, 1))))
        resampling = Resampling.mode if is_classified(spec) else Resampling.average
        values = src.read(1, out_shape=shape, resampling=resampling)
    picture = Image.fromarray(colourise(values, spec), "RGBA")
    legend = _legend(spec, set(np.unique(values).tolist()), max(picture.height, 120))
    canvas = Image.new("RGBA", (picture.width + legend.width, legend.height), (255, 255, 255, 255))
    canvas.alpha_composite(picture, (0, 0))
    canvas.alpha_composite(legend, (picture.width, 0))
    buf = io.BytesIO()
    canvas.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def put_quicklook(store: ObjectStore, key: str, cog_path: str | Path, spec: LayerSpec) -> str:
    """Render the quicklook of a COG and write it atomically to `key`; returns its href."""
    return store.put_bytes(key, render(cog_path, spec))
