"""Pydantic models of product and layer specs.

Structural checks (types, required fields) are pydantic's; the semantic checks that name the
product, layer and field (unique codes, codes inside the dtype range, nodata declared) live in
:func:`check_product`, which :mod:`landstack.catalog.products` runs on every spec it loads.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from landstack.catalog.errors import SpecError

DType = Literal["uint8", "uint16", "uint32", "int8", "int16", "int32", "float32"]
LayerKind = Literal["thematic", "continuous", "mask"]
Role = Literal["custodian", "publisher", "pointOfContact", "owner", "originator", "distributor", "author"]
MaintenanceFrequency = Literal[
    "continual",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "biannually",
    "annually",
    "asNeeded",
    "irregular",
    "notPlanned",
    "unknown",
]
TopicCategory = Literal[
    "environment",
    "imageryBaseMapsEarthCover",
    "planningCadastre",
    "structure",
    "farming",
    "biota",
    "inlandWaters",
    "society",
    "geoscientificInformation",
]

_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassCode(_Strict):
    """One pixel code of a thematic layer (or a special code of a continuous one)."""

    value: int
    name: str = Field(description="Human-readable class name, e.g. 'Woody needle leaved trees'")
    color: str = Field(description="#RRGGBB")
    nodata: bool = False
    description: str | None = None

    @field_validator("color")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX.match(v):
            raise ValueError(f"colour {v!r} is not #RRGGBB")
        return v.upper()

    @property
    def slug(self) -> str:
        """Machine name (classification extension `name`)."""
        return re.sub(r"[^0-9a-z]+", "-", self.name.lower()).strip("-")


class ColorRamp(_Strict):
    """Linear colour ramp over a value range, for continuous layers."""

    stops: list[tuple[float, str]] = Field(min_length=2)


class Contact(_Strict):
    organisation: str
    role: Role
    email: str | None = None
    url: str | None = None
    individual: str | None = None


class Keywords(_Strict):
    """A keyword set from one thesaurus (GEMET, GEMET - INSPIRE themes, spatial scope, ...)."""

    thesaurus: str | None = None
    thesaurus_date: dt.date | None = None
    thesaurus_url: str | None = None
    keywords: list[str] = Field(min_length=1)
    anchors: dict[str, str] = Field(default_factory=dict, description="keyword -> URI")


class Grid(_Strict):
    """The grid a layer is delivered on."""

    name: str = Field(description="e.g. 'EEA reference grid 100 km'")
    crs: str = Field(description="e.g. 'EPSG:3035' or 'ESRI:54009'")
    resolution: float = Field(gt=0, description="pixel size in the CRS unit")
    resolution_unit: Literal["m", "arcsec"] = "m"
    tile_size: float | None = Field(None, description="tile edge in CRS units; None for single global files")
    origin: tuple[float, float] = (0.0, 0.0)

    @property
    def resolution_m(self) -> float:
        """Approximate ground resolution in metres (arc-seconds at the equator)."""
        return self.resolution if self.resolution_unit == "m" else self.resolution * 30.87

    @property
    def tile_pixels(self) -> int | None:
        if self.tile_size is None:
            return None
        return round(self.tile_size / self.resolution)


class Citation(_Strict):
    identifier: str = Field(description="citation identifier; '{year}' is replaced by the reference year")
    doi: str | None = Field(None, description="DOI of this layer, once minted (without https://doi.org/)")
    creation: dt.date
    publication: dt.date
    revision: dt.date | None = None
    edition: str = "01.00"


class ReferenceProduct(_Strict):
    """The public product family a layer follows; cited in STAC and ISO records."""

    title: str
    doi: str | None = None
    url: str | None = None
    citation: str | None = None


class LayerSpec(_Strict):
    """One layer of a product: one raster on one grid (a STAC collection)."""

    code: str = Field(description="short layer code, e.g. RAS, RASCL, IMD, S_10m")
    id: str = Field(description="collection id, e.g. clcplus-backbone-ras")
    title: str
    description: str
    kind: LayerKind
    dtype: DType
    nodata: int | float
    grid: Grid
    classes: list[ClassCode] = Field(default_factory=list)
    value_range: tuple[float, float] | None = None
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    ramp: ColorRamp | None = None
    asset_key: str = "data"
    attributes: list[str] = Field(default_factory=lambda: ["Value", "Count"])

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"{v!r} must be lower-case letters, digits and '-'")
        return v

    def code_of(self, value: int) -> ClassCode | None:
        """The class entry for a pixel value, if any."""
        return next((c for c in self.classes if c.value == value), None)


class ProductSpec(_Strict):
    """A product (family member) with its layers and everything its metadata needs."""

    id: str
    title: str
    family: str
    abstract: str
    layers: list[LayerSpec] = Field(min_length=1)
    citation: Citation
    reference_product: ReferenceProduct | None = None
    version: str = "1.0.0"
    temporal_start: dt.date
    temporal_end: dt.date | None = None
    reference_period: str = Field(description="e.g. 'reference year ± 3 months'")
    update_frequency: MaintenanceFrequency
    lineage: str
    keywords: list[Keywords] = Field(min_length=1)
    topic_categories: list[TopicCategory] = Field(min_length=1)
    spatial_scope: str = "European"
    bbox: tuple[float, float, float, float] = Field(description="WGS84 west, south, east, north")
    licence: str = Field(description="SPDX id or 'other'")
    licence_url: str | None = None
    access_constraints: str = "no limitations to public access"
    use_constraints: str
    contacts: list[Contact] = Field(min_length=1)
    language: str = "eng"
    processing_level: str = "L4"

    @field_validator("contacts")
    @classmethod
    def _roles(cls, v: list[Contact]) -> list[Contact]:
        roles = {c.role for c in v}
        missing = {"custodian", "publisher", "pointOfContact"} - roles
        if missing:
            raise ValueError(f"contacts need the roles {sorted(missing)} as well")
        return v


_DTYPE_LIMITS = {name: np.iinfo(name) for name in ("uint8", "uint16", "uint32", "int8", "int16", "int32")}


def _in_dtype(dtype: str, value: float) -> bool:
    if dtype == "float32":
        return bool(np.isfinite(value)) or np.isnan(value)
    info = _DTYPE_LIMITS[dtype]
    return float(value).is_integer() and info.min <= value <= info.max


def check_product(product: ProductSpec) -> None:
    """Semantic checks of a parsed spec; raises :class:`SpecError` naming product, layer and field."""
    seen_ids: set[str] = set()
    for layer in product.layers:
        where = (product.id, layer.code)
        if layer.id in seen_ids:
            raise SpecError(*where, "id", f"collection id {layer.id!r} is used by two layers; rename one")
        seen_ids.add(layer.id)
        if not _in_dtype(layer.dtype, layer.nodata):
            raise SpecError(
                *where, "nodata", f"{layer.nodata} does not fit {layer.dtype}; pick a value inside it"
            )
        values: set[int] = set()
        for i, cls in enumerate(layer.classes):
            if cls.value in values:
                raise SpecError(
                    *where, f"classes[{i}].value", f"duplicate code {cls.value}; codes must be unique"
                )
            values.add(cls.value)
            if not _in_dtype(layer.dtype, cls.value):
                raise SpecError(
                    *where, f"classes[{i}].value", f"code {cls.value} is outside the range of {layer.dtype}"
                )
        if layer.kind == "thematic" and not layer.classes:
            raise SpecError(*where, "classes", "a thematic layer needs its class codes")
        if layer.kind == "continuous":
            if layer.value_range is None:
                raise SpecError(*where, "value_range", "a continuous layer needs value_range [min, max]")
            lo, hi = layer.value_range
            if not (_in_dtype(layer.dtype, lo) and _in_dtype(layer.dtype, hi)) or lo > hi:
                raise SpecError(
                    *where, "value_range", f"[{lo}, {hi}] is not an ordered range inside {layer.dtype}"
                )
            if lo <= layer.nodata <= hi:
                raise SpecError(*where, "nodata", f"{layer.nodata} lies inside value_range [{lo}, {hi}]")
        if layer.classes and layer.nodata not in values:
            raise SpecError(*where, "nodata", f"nodata {layer.nodata} has no entry in classes; add one")
        if (
            layer.grid.tile_size is not None
            and not float(layer.grid.tile_size / layer.grid.resolution).is_integer()
        ):
            raise SpecError(*where, "grid.tile_size", "tile size must be a whole number of pixels")
