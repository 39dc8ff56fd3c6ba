"""Product steps: post-process one roll-out tile, assemble a product tile, summarise a run.

`postprocess` turns a prediction item (collection `landstack-predictions`) into the roll-out tile's
final layers of each product family, written as COGs under ``intermediates/<year>/<tile>/`` with an
item in `landstack-intermediates`. `assemble` mosaics every intermediate item of a year that lies in
a product tile into the catalogue's layers (COG + attribute table + quicklook + item per layer, via
:func:`landstack.pipelines.products.assemble.assemble`). `summary` counts what was produced and,
given the synthetic truth, measures accuracy per family.

Product tile extent: a 100 km EEA cell that the roll-out tiles cover only in part would be mostly
nodata, so the assembled tile is clipped to the part of the cell the intermediates cover (the grid
stays aligned to the cell's pixels, so later runs covering more of it line up without seams).
Layers on their own grid (CISC, 90 km tiles) have tiles straddling cells: each is made once, by
the lowest cell holding one of its inputs, from the roll-out tiles of every cell it covers.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from landstack.pipelines.steps._families import FamiliesInput
from landstack.pipelines.steps.registry import StepOutput, current_store, step

log = logging.getLogger("landstack.steps")

INTERMEDIATES_COLLECTION = "landstack-intermediates"
# the synthetic archive's truth rasters the summary can score against
TRUTH_LAYERS = ("landcover", "imperviousness", "builtup", "builtup-area", "impervious-classes", "objects")


class PostprocessParameters(BaseModel):
    """Tunable post-processing parameters (defaults follow the production lines)."""

    model_config = ConfigDict(extra="forbid")

    win_size: int = Field(4, ge=1, le=15, description="bilateral filter window (radius = win_size // 2)")
    sigma_spatial: float = Field(0.8, gt=0)
    sigma_color: float = Field(0.25, gt=0)
    standard_percentile: float = Field(90.0, ge=0, le=100, description="change threshold percentile")
    leaf_type_percentile: float = Field(99.5, ge=0, le=100, description="for leaf-type changes 2 <-> 3/4")
    conversion_percentile: float = Field(50.0, ge=0, le=100, description="for vegetation -> 1 or 9")
    sea_mask: str | None = Field(None, description="URL of a sea mask (GeoJSON/GeoPackage or raster)")
    corrections: str | None = Field(None, description="URL of correction areas (GeoJSON/GeoPackage)")
    corrections_field: str = Field("class", description="property holding the target RAS class")
    imd_calibration_tolerance: float = Field(0.0, ge=0, le=100)
    change_tolerance: int = Field(0, ge=0, le=100)
    ndwi_threshold: float = Field(0.2, ge=-1, le=1)
    cisc_min_valid: int = Field(5, ge=1, le=9)
    block: int = Field(1024, ge=64, le=8192, description="pixels per block side (memory follows it)")


class PostprocessInput(FamiliesInput):
    prediction: str = Field(description="URL of the prediction item (collection landstack-predictions)")
    previous_year: int = Field(0, ge=0, le=2100, description="reference year to calibrate against; 0 = none")
    parameters: PostprocessParameters = Field(default_factory=PostprocessParameters)


class PostprocessOutput(StepOutput):
    item: str = Field(description="URL of the intermediates item")
    layers: dict[str, str] = Field(description="layer name -> COG URL")


@step("postprocess", PostprocessInput, PostprocessOutput)
def postprocess(inp: PostprocessInput) -> PostprocessOutput:
    """Post-process one roll-out tile's predictions into every requested family's layers."""
    from landstack.pipelines.steps import _postprocess

    item, layers = _postprocess.run(current_store(), inp)
    return PostprocessOutput(item=item, layers=layers)


class AssembleInput(FamiliesInput):
    product_tile: str = Field(description="EEA 100 km cell code, e.g. E40N30")
    year: int = Field(ge=2015, le=2100)
    chunk: int = Field(1024, ge=64, le=8192, description="pixels per mosaic block side")


class AssembleOutput(StepOutput):
    items: list[str] = Field(description="URLs of the layer items written")


@step("assemble", AssembleInput, AssembleOutput)
def assemble(inp: AssembleInput) -> AssembleOutput:
    """Mosaic a year's intermediates into one product tile: every layer's COG, table, quicklook, item."""
    from landstack.pipelines.steps import _assembly

    return AssembleOutput(items=_assembly.run(current_store(), inp))


class SummaryInput(FamiliesInput):
    run: str = Field(description="run name (reported as is)")
    year: int = Field(ge=2015, le=2100)
    published: Any = Field(None, description="the publish step's output (optional)")
    truth: dict[str, str] = Field(
        default_factory=dict, description="truth name (as the synthetic archive names them) -> raster URL"
    )

    @field_validator("truth")
    @classmethod
    def _known_truth(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(TRUTH_LAYERS))
        if unknown:
            raise ValueError(f"unknown truth layers {unknown}; give any of {list(TRUTH_LAYERS)}")
        return v


class SummaryOutput(StepOutput):
    run: str
    year: int
    families: dict[str, dict[str, Any]] = Field(
        description="family -> tiles, layers, items, accuracy, quicklooks"
    )
    published: int | None = Field(None, description="items the publish step reported")


@step("summary", SummaryInput, SummaryOutput, cached=False)
def summary(inp: SummaryInput) -> SummaryOutput:
    """Count tiles, layers and items per family; accuracy against the synthetic truth when given."""
    from landstack.pipelines.steps import _summary

    families, published = _summary.run(current_store(), inp)
    return SummaryOutput(run=inp.run, year=inp.year, families=families, published=published)
