"""The options every stack-reading command shares (AOI, reference year, STAC source, grid, cloud limit).

`stack_options` adds them to a typer command once; the command receives them validated as one
`StackRequest`, which also opens the stack.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from landstack.pipelines import validate
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.settings import get_settings

if TYPE_CHECKING:
    import xarray as xr


@dataclass(frozen=True)
class StackRequest:
    """Where and when to read the Sentinel-2 stack: the options every stack-reading command shares."""

    bbox: validate.Bbox
    crs: str
    year: int
    catalog: str | None
    api_url: str | None
    target_crs: str
    max_cloud: float

    @classmethod
    def parse(
        cls,
        bbox: str,
        year: int,
        crs: str,
        catalog: str | None,
        api_url: str | None,
        target_crs: str,
        max_cloud: float,
    ) -> StackRequest:
        """Validate the raw option values (raises BadInputError naming the option)."""
        if (catalog is None) == (api_url is None):
            raise BadInputError("give exactly one source: --catalog COLLECTION_JSON or --api-url URL")
        crs = validate.check_crs(crs, "--crs")
        if catalog is not None:
            catalog = validate.check_url(catalog, "--catalog")
            if not catalog.startswith(validate.HTTP_SCHEMES):
                validate.read_json(catalog, "--catalog", get_settings().s3())
        if api_url is not None:
            api_url = validate.check_url(
                api_url, "--api-url", schemes=validate.HTTP_SCHEMES, allow_path=False
            )
        return cls(
            bbox=validate.parse_bbox(bbox, crs),
            crs=crs,
            year=validate.check_year(year),
            catalog=catalog,
            api_url=api_url,
            target_crs=validate.check_crs(target_crs, "--target-crs", allow_native=True),
            max_cloud=validate.check_range(max_cloud, "--max-cloud", 0, 100),
        )

    def load(self, bands: list[str], chunks: int = 256) -> xr.Dataset:
        """Search the items (reference year ± 3 months) and open the lazy stack of `bands`."""
        from landstack.catalog.grid import Aoi
        from landstack.pipelines import ingest

        return ingest.load_reference_year(
            Aoi(self.bbox, self.crs),
            self.year,
            bands,
            api_url=self.api_url,
            catalog_href=self.catalog,
            max_cloud=self.max_cloud,
            crs=self.target_crs,
            chunks=chunks,
        )


# The shared options, declared once; `stack_options` adds them to a command.
_STACK_OPTIONS: dict[str, tuple[Any, Any]] = {
    "bbox": (str, typer.Option(..., help="AOI minx,miny,maxx,maxy")),
    "year": (int, typer.Option(..., help="reference year (series covers year ± 3 months)")),
    "crs": (str, typer.Option("EPSG:4326", help="CRS of --bbox")),
    "catalog": (
        str | None,
        typer.Option(None, help="static STAC collection.json href (path, file:// or s3://)"),
    ),
    "api_url": (str | None, typer.Option(None, help="STAC API root URL")),
    "target_crs": (str, typer.Option("EPSG:3035", help="output CRS, or 'native' for the items' UTM grid")),
    "max_cloud": (float, typer.Option(80.0, help="skip acquisitions with more cloud cover (%)")),
}


def stack_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the shared stack options; it receives them validated as `request: StackRequest`."""
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(command).parameters.values()
        if p.name != "request"
    ]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, (kind, option) in _STACK_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        request = StackRequest.parse(**{name: kwargs.pop(name) for name in _STACK_OPTIONS})
        command(request=request, **kwargs)

    wrapper.__signature__ = inspect.Signature([*shared, *own])  # type: ignore[attr-defined]
    return wrapper
