"""CLCplus Backbone style land cover: RAS, RASCL, RASDL and RASPL from class probabilities.

The order follows the production line: decode the predict step's probabilities, bilateral filter,
(blend across production units, see :mod:`blending`), interannual calibration against the previous
reference year, arg-max, optional rule-based recoding (flagged in RASPL), coastal seawater buffer,
outside area and no data. Codes come from the catalogue spec of each layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from landstack.pipelines.products import codes
from landstack.pipelines.products.errors import ShapeError, SpecMismatchError
from landstack.pipelines.products.filters import SIGMA_COLOR, SIGMA_SPATIAL, WIN_SIZE, bilateral_filter

PROB_SCALE = 250  # the predict step's encoding: uint8 0-250 = probability 0-1
PROB_NODATA = 255


def decode_probabilities(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (C, H, W) 0-250 with nodata 255 -> float32 probabilities and the valid mask (H, W).

    A pixel is valid where none of its classes holds nodata.
    """
    if encoded.ndim != 3:
        raise ShapeError(f"encoded probabilities must be (classes, rows, cols), got {encoded.shape}")
    valid = ~(encoded == PROB_NODATA).any(axis=0)
    prob = encoded.astype(np.float32) / PROB_SCALE
    prob[:, ~valid] = 0.0
    return prob, valid


def encode_probabilities(prob: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode_probabilities` (rounded to 1/250)."""
    out = np.clip(np.rint(prob * PROB_SCALE), 0, PROB_SCALE).astype(np.uint8)
    out[:, ~valid] = PROB_NODATA
    return out


def class_codes() -> np.ndarray:
    """RAS codes of the probability channels: channel i holds the probability of class codes[i]."""
    return np.array(codes.thematic_codes(codes.layer(codes.CLCPLUS_RAS)), np.uint8)


def _names_to_codes(*names: str) -> tuple[int, ...]:
    ras = codes.layer(codes.CLCPLUS_RAS)
    return tuple(codes.code(ras, n) for n in names)


def _default_leaf_pairs() -> tuple[tuple[int, int], ...]:
    needle, deciduous, evergreen = _names_to_codes(
        "Woody needle leaved trees", "Woody broadleaved deciduous trees", "Woody broadleaved evergreen trees"
    )
    return tuple(pair for a, b in ((needle, deciduous), (needle, evergreen)) for pair in ((a, b), (b, a)))


def _default_conversion_sources() -> tuple[int, ...]:
    return _names_to_codes(
        "Woody needle leaved trees",
        "Woody broadleaved deciduous trees",
        "Woody broadleaved evergreen trees",
        "Low-growing woody plants",
        "Permanent herbaceous",
        "Periodically herbaceous",
    )


def _default_conversion_targets() -> tuple[int, ...]:
    return _names_to_codes("Sealed", "Non and sparsely vegetated")


@dataclass(frozen=True)
class CalibrationConfig:
    """Interannual calibration: which class changes are allowed, by percentile of the change measure.

    A change from class a to b is kept when its change measure (Euclidean distance of the two
    probability vectors) exceeds the threshold of direction (a, b): the `standard` percentile of
    the change measures of all changing pixels, `leaf_type` for changes between tree leaf types,
    `conversion` for vegetated classes becoming sealed or non-vegetated. `thresholds` fixes absolute
    thresholds for given directions; with `per_direction`, directions with at least `min_samples`
    changing pixels use the percentile of their own distribution.
    """

    standard: float = 90.0
    leaf_type: float = 99.5
    conversion: float = 50.0
    leaf_pairs: tuple[tuple[int, int], ...] = field(default_factory=_default_leaf_pairs)
    conversion_sources: tuple[int, ...] = field(default_factory=_default_conversion_sources)
    conversion_targets: tuple[int, ...] = field(default_factory=_default_conversion_targets)
    thresholds: dict[tuple[int, int], float] = field(default_factory=dict)
    per_direction: bool = False
    min_samples: int = 1000

    def percentile(self, src: int, dst: int) -> float:
        """The percentile that sets the threshold of change direction src -> dst."""
        if (src, dst) in self.leaf_pairs:
            return self.leaf_type
        if src in self.conversion_sources and dst in self.conversion_targets:
            return self.conversion
        return self.standard


@dataclass
class Calibration:
    """Result of the interannual calibration."""

    prob: np.ndarray  # (C, H, W) calibrated probabilities: the previous ones where a change was suppressed
    classes: np.ndarray  # (H, W) uint8 RAS codes after calibration (nodata where invalid)
    change: np.ndarray  # (H, W) float32 change measure
    suppressed: np.ndarray  # (H, W) bool
    thresholds: dict[tuple[int, int], float]


def change_measure(prob: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Euclidean distance between two probability vectors per pixel (0 .. sqrt 2)."""
    return np.sqrt(np.square(prob - prev).sum(axis=0, dtype=np.float32))


def argmax_codes(prob: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """RAS codes of the most probable class; nodata where invalid."""
    ras = codes.layer(codes.CLCPLUS_RAS)
    out = class_codes()[np.argmax(prob, axis=0)]
    out[~valid] = int(ras.nodata)
    return out


def calibrate(
    prob: np.ndarray,
    prev: np.ndarray,
    valid: np.ndarray,
    prev_valid: np.ndarray | None = None,
    config: CalibrationConfig | None = None,
) -> Calibration:
    """Allow or suppress class changes against the previous reference year's probabilities."""
    cfg = config or CalibrationConfig()
    if prob.shape != prev.shape:
        raise ShapeError(f"this year's probabilities {prob.shape} and last year's {prev.shape} differ")
    both = valid & (prev_valid if prev_valid is not None else True)
    n = prob.shape[0]
    class_of = class_codes()
    now_i, prev_i = np.argmax(prob, axis=0), np.argmax(prev, axis=0)
    cls_now = np.where(valid, class_of[now_i], codes.layer(codes.CLCPLUS_RAS).nodata).astype(np.uint8)
    cls_prev = class_of[prev_i]
    dist = change_measure(prob, prev)
    changed = both & (now_i != prev_i)
    direction = prev_i[changed] * n + now_i[changed]  # one code per change direction
    moved = dist[changed]
    thresholds: dict[tuple[int, int], float] = {}
    table = np.full(n * n, np.inf)  # threshold per direction code
    percentiles: dict[float, float] = {}  # pooled percentiles, computed once per level
    for d in np.unique(direction).tolist():
        src, dst = int(class_of[d // n]), int(class_of[d % n])
        if (src, dst) in cfg.thresholds:
            thr = float(cfg.thresholds[(src, dst)])
        else:
            q = cfg.percentile(src, dst)
            own = direction == d if cfg.per_direction else None
            if own is not None and own.sum() >= cfg.min_samples:
                thr = float(np.percentile(moved[own], q))
            else:
                if q not in percentiles:
                    percentiles[q] = float(np.percentile(moved, q))
                thr = percentiles[q]
        thresholds[(src, dst)] = thr
        table[d] = thr
    keep = np.zeros(prob.shape[1:], bool)
    keep[changed] = moved > table[direction]
    suppressed = changed & ~keep
    out_prob = np.where(suppressed[None], prev, prob).astype(np.float32)
    classes = np.where(suppressed, cls_prev, cls_now).astype(np.uint8)
    return Calibration(out_prob, classes, dist, suppressed, thresholds)


def confidence(prob: np.ndarray) -> np.ndarray:
    """RASCL values: round(100 x (p1 - p2)) of the two highest probabilities, uint8 0-100."""
    top2 = -np.partition(-prob, 1, axis=0)[:2] if prob.shape[0] > 1 else np.stack([prob[0], 0 * prob[0]])
    margin = np.rint(100.0 * (top2[0] - top2[1]).astype(np.float64))
    return np.clip(margin, 0, 100).astype(np.uint8)


def recode(classes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rule-based recoding: where `targets` (H, W) is non-zero, the class becomes that code.

    Nodata pixels stay nodata. Target codes must be thematic RAS classes.
    """
    ras = codes.layer(codes.CLCPLUS_RAS)
    allowed = set(codes.thematic_codes(ras))
    used = set(np.unique(targets).tolist()) - {0}
    if used - allowed:
        raise SpecMismatchError(
            f"recoding targets {sorted(used - allowed)} are not RAS classes; use one of {sorted(allowed)}"
        )
    out = classes.copy()
    sel = (targets > 0) & (classes != ras.nodata)
    out[sel] = targets[sel]
    return out


def _unfiltered(prob: np.ndarray, valid: np.ndarray, **_: float) -> np.ndarray:
    return prob


@dataclass
class ClcplusLayers:
    """The four CLCplus layers of one tile, in their spec dtypes."""

    ras: np.ndarray
    rascl: np.ndarray
    rasdl: np.ndarray
    raspl: np.ndarray
    thresholds: dict[tuple[int, int], float] = field(default_factory=dict)


def clcplus_layers(
    encoded: np.ndarray,
    data_score: np.ndarray,
    *,
    prev_encoded: np.ndarray | None = None,
    production_area: np.ndarray | None = None,
    sea: np.ndarray | None = None,
    corrections: np.ndarray | None = None,
    win_size: int = WIN_SIZE,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_color: float = SIGMA_COLOR,
    calibration: CalibrationConfig | None = None,
    thresholds: Mapping[tuple[int, int], float] | None = None,
    filter_inputs: bool = True,
) -> ClcplusLayers:
    """RAS, RASCL, RASDL and RASPL from encoded probabilities (C, H, W) and the data score (H, W).

    `prev_encoded`: the previous reference year's encoded probabilities (enables calibration);
    `production_area`: inside (True) / outside (False -> 254); `sea`: coastal seawater buffer
    (-> 253); `corrections`: rasterised recoding targets (0 = none). No data -> 255.
    `thresholds`: change thresholds per direction computed beforehand (e.g. over a whole tile by
    :mod:`clcplus_blocks`); they take precedence over the percentiles of this array's data.
    `filter_inputs=False` when the probabilities were already filtered (and blended across
    production units by `blending.blend_encoded`).
    """
    ras_spec, rascl_spec = codes.layer(codes.CLCPLUS_RAS), codes.layer(codes.CLCPLUS_RASCL)
    rasdl_spec, raspl_spec = codes.layer(codes.CLCPLUS_RASDL), codes.layer(codes.CLCPLUS_RASPL)
    n_classes = len(codes.thematic_codes(ras_spec))
    if encoded.shape[0] != n_classes:
        raise ShapeError(f"expected {n_classes} probability channels (RAS classes), got {encoded.shape[0]}")
    grid = encoded.shape[1:]
    for name, arr in (
        ("data_score", data_score),
        ("production_area", production_area),
        ("sea", sea),
        ("corrections", corrections),
    ):
        if arr is not None and arr.shape != grid:
            raise ShapeError(f"{name} has shape {arr.shape}, the probabilities' grid is {grid}")
    prob, valid = decode_probabilities(encoded)
    smooth = bilateral_filter if filter_inputs else _unfiltered
    prob = smooth(prob, valid, win_size=win_size, sigma_spatial=sigma_spatial, sigma_color=sigma_color)
    used: dict[tuple[int, int], float] = {}
    if prev_encoded is not None:
        prev, prev_valid = decode_probabilities(prev_encoded)
        prev = smooth(
            prev, prev_valid, win_size=win_size, sigma_spatial=sigma_spatial, sigma_color=sigma_color
        )
        cfg = calibration or CalibrationConfig()
        if thresholds:
            cfg = dataclasses.replace(cfg, thresholds={**thresholds, **cfg.thresholds})
        cal = calibrate(prob, prev, valid, prev_valid, cfg)
        prob, interim, used = cal.prob, cal.classes, cal.thresholds
    else:
        interim = argmax_codes(prob, valid)
    ras = recode(interim, corrections) if corrections is not None else interim.copy()
    inside = np.ones(grid, bool) if production_area is None else np.asarray(production_area, bool)
    recoded = ras != interim
    if sea is not None:
        ras[np.asarray(sea, bool)] = codes.code(ras_spec, codes.COASTAL)
    ras[~inside] = codes.code(ras_spec, codes.OUTSIDE)

    outside_cl = codes.code(rascl_spec, codes.OUTSIDE)
    rascl = confidence(prob)
    rascl[~(inside & valid)] = outside_cl

    lo, hi = (int(v) for v in rasdl_spec.value_range or (0, 200))
    rasdl = np.clip(data_score, lo, hi).astype(codes.np_dtype(rasdl_spec))
    rasdl[~inside] = int(rasdl_spec.nodata)

    raspl = recoded.astype(codes.np_dtype(raspl_spec))
    raspl[~inside] = codes.code(raspl_spec, codes.OUTSIDE)
    return ClcplusLayers(ras, rascl, rasdl, raspl, used)
