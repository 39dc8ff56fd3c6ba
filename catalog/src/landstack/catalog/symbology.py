"""Colour maps and raster attribute tables derived from layer specs.

GDAL embeds the colour map in the GeoTIFF (palette); the attribute table travels as a PAM
`.aux.xml` beside it, as CLMS delivers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

import numpy as np

from landstack.catalog.spec import LayerSpec

RGBA = tuple[int, int, int, int]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def colormap(layer: LayerSpec) -> dict[int, RGBA]:
    """Value -> RGBA for every code and, for continuous 8-bit layers, every value of the ramp.

    GDAL palettes exist only for 8- and 16-bit bands; ramps are expanded only for uint8 so a
    palette never has more than 256 entries.
    """
    cmap: dict[int, RGBA] = {}
    if layer.ramp is not None and layer.value_range is not None and layer.dtype == "uint8":
        stops = sorted(layer.ramp.stops)
        xs = [s[0] for s in stops]
        rgb = np.array([_rgb(s[1]) for s in stops], dtype=float)
        lo, hi = int(layer.value_range[0]), int(layer.value_range[1])
        for v in range(lo, hi + 1):
            r, g, b = (round(float(np.interp(v, xs, rgb[:, k]))) for k in range(3))
            cmap[v] = (r, g, b, 255)
    for cls in layer.classes:
        r, g, b = _rgb(cls.color)
        cmap[cls.value] = (r, g, b, 0 if cls.nodata else 255)
    return dict(sorted(cmap.items()))


def attribute_table(
    layer: LayerSpec, counts: Mapping[int, int], pixel_area_m2: float
) -> list[dict[str, object]]:
    """Rows of the raster attribute table: the spec's attributes for each value present."""
    total = sum(n for v, n in counts.items() if v != layer.nodata) or 1
    rows: list[dict[str, object]] = []
    for value in sorted(counts):
        n = int(counts[value])
        cls = layer.code_of(value)
        row: dict[str, object] = {}
        for attr in layer.attributes:
            key = attr.lower()
            if key == "value":
                row[attr] = int(value)
            elif key == "count":
                row[attr] = n
            elif key == "class_name":
                row[attr] = cls.name if cls else str(value)
            elif key == "area_km2":
                row[attr] = round(n * pixel_area_m2 / 1e6, 6)
            elif key == "area_perc":
                row[attr] = round(100.0 * n / total, 4) if value != layer.nodata else 0.0
            else:  # layer-specific value column (Confidence, Obs_count): the pixel value itself
                row[attr] = int(value)
        rows.append(row)
    return rows


def aux_xml(layer: LayerSpec, rows: list[dict[str, object]]) -> str:
    """GDAL PAM `.aux.xml` with a GDALRasterAttributeTable for band 1."""
    if not rows:
        return '<PAMDataset><PAMRasterBand band="1"/></PAMDataset>\n'
    cols = list(rows[0])
    # GDAL field types: 0 integer, 1 real, 2 string; usages: 5 MinMax/value, 1 pixel count, 2 name, 0 generic
    usage = {"value": 5, "count": 1, "class_name": 2}
    out = [
        "<PAMDataset>",
        '  <PAMRasterBand band="1">',
        '    <GDALRasterAttributeTable tableType="thematic">',
    ]
    for i, c in enumerate(cols):
        sample = rows[0][c]
        ftype = 2 if isinstance(sample, str) else (1 if isinstance(sample, float) else 0)
        out.append(
            f'      <FieldDefn index="{i}"><Name>{escape(c)}</Name><Type>{ftype}</Type>'
            f"<Usage>{usage.get(c.lower(), 0)}</Usage></FieldDefn>"
        )
    for r, row in enumerate(rows):
        fields = "".join(f"<F>{escape(str(row[c]))}</F>" for c in cols)
        out.append(f'      <Row index="{r}">{fields}</Row>')
    out += ["    </GDALRasterAttributeTable>", "  </PAMRasterBand>", "</PAMDataset>", ""]
    return "\n".join(out)
