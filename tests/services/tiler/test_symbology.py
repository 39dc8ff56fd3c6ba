"""Colour maps and legends of every product layer, from the catalogue."""

from __future__ import annotations

import numpy as np
import pytest
from rio_tiler.colormap import apply_cmap

from landstack.catalog import get_layer, layer_ids
from landstack.tiler.errors import UnknownLayerError
from landstack.tiler.symbology import layer_colormap, legend


@pytest.mark.parametrize("cid", layer_ids())
def test_every_layer_has_a_colormap_rio_tiler_applies(cid: str) -> None:
    _, layer = get_layer(cid)
    cmap = layer_colormap(cid)
    lo, hi = layer.value_range or (0, max(c.value for c in layer.classes))
    data = np.linspace(lo, hi, 64).astype(layer.dtype).reshape(1, 8, 8)
    rgb, alpha = apply_cmap(data, cmap)
    assert rgb.shape == (3, 8, 8) and alpha.shape == (8, 8)
    for cls in layer.classes:
        if cls.value <= np.iinfo(layer.dtype).max:
            got, a = apply_cmap(np.full((1, 1, 1), cls.value, dtype=layer.dtype), cmap)
            expected = tuple(int(cls.color[i : i + 2], 16) for i in (1, 3, 5))
            assert (tuple(got[:, 0, 0].tolist()) == expected) or cls.nodata, (cid, cls.value)
            assert int(a[0, 0]) == (0 if cls.nodata else 255)


def test_wide_continuous_layers_use_intervals_over_their_range() -> None:
    cmap = layer_colormap("emc-built-s-100m")
    assert isinstance(cmap, list)
    lows = [iv[0][0] for iv in cmap]
    assert min(lows) == 0 and max(iv[0][1] for iv in cmap) >= 10000
    rgb, _ = apply_cmap(np.array([[[0, 5000, 10000]]], dtype="uint16"), cmap)
    assert len({tuple(rgb[:, 0, i]) for i in range(3)}) == 3  # the ramp changes across the range


def test_legend_of_a_classified_and_a_continuous_layer() -> None:
    lc = legend("clcplus-backbone-ras")
    assert (
        lc["classified"]
        and {"value": 1, "name": "Sealed", "color": "#FF0100", "nodata": False} in lc["classes"]
    )
    imd = legend("hrl-imperviousness-imd")
    assert not imd["classified"] and imd["ramp"]["range"] == [0.0, 100.0] and imd["unit"] == "percent"


def test_an_unknown_layer_is_named_in_the_error() -> None:
    with pytest.raises(UnknownLayerError, match="no-such-layer"):
        legend("no-such-layer")
