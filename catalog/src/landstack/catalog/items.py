"""STAC items: one builder for every item the project writes.

`build_item` is the generic builder (model items, Sentinel-2 archive items, test items): it takes
the id, where the item lies (a `Tile` / `TileGrid`, or a WGS84 geometry), its time, properties and
`Asset`s, and derives what must always be derived the same way:

- `proj:code`, `proj:shape`, `proj:transform`, `proj:bbox` from a `TileGrid` (item level, and per
  asset for assets given their own grid, e.g. the 10/20/60 m bands of a Sentinel-2 item);
- `file:size` and `file:checksum` (multihash: ``1220`` = sha2-256, 32 bytes, then the hex digest),
  streamed from the object store by `file_info` or computed from bytes in memory;
- `stac_extensions` from the fields present (``raster:``, ``proj:``, ``file:``, ...), in the order
  the collections use, so an item always declares exactly the extensions it uses;
- `derived_from` links and the `landstack:inputs` property for the input items.

`layer_item` builds a product layer's item on top of it: the assets are the collection's
`item_assets` (same keys, roles, raster bands, classes) with hrefs and file fields filled in; the
raster files are checked against the layer spec and the tile grid (dtype, nodata, CRS, shape,
transform) by reading their headers only; processing lineage, level and software, the reference
year as `start_datetime`/`end_datetime`, `version` and the collection link are set; the item is
validated offline before it is returned. Any inconsistency raises `ItemError` naming the item,
the asset and the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac

from landstack.catalog.errors import CatalogError, ItemError
from landstack.catalog.grid import Tile, TileGrid, crs_code
from landstack.catalog.products import get_layer
from landstack.catalog.spec import LayerSpec, ProductSpec
from landstack.catalog.stac import EXT, SOFTWARE, citation_text, item_assets_for
from landstack.storage import ObjectStore, S3Options, StoreError, layout

MULTIHASH_SHA256 = "1220"  # multihash prefix: function sha2-256 (0x12), digest length 32 (0x20)
_CHUNK = 1 << 20
# extension of each field prefix, in the order collections list them; `version` has no prefix
_PREFIXES = (
    ("classification", "classification"),
    ("eo", "eo"),
    ("raster", "raster"),
    ("proj", "projection"),
    ("file", "file"),
    ("processing", "processing"),
    ("sci", "scientific"),
    ("version", "version"),
    ("sat", "sat"),
    ("view", "view"),
)
_VERSION_FIELDS = {"version", "deprecated"}


# --- files -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """Size and multihash checksum of a file (the file extension's fields)."""

    size: int
    checksum: str

    def fields(self) -> dict[str, Any]:
        return {"file:size": self.size, "file:checksum": self.checksum}

    @classmethod
    def of_bytes(cls, data: bytes) -> FileInfo:
        """Size and checksum of bytes in memory (what a writer has just put in the store)."""
        return cls(len(data), MULTIHASH_SHA256 + hashlib.sha256(data).hexdigest())


def _url(source: str, store: ObjectStore | None) -> str:
    if "://" in source or store is None:
        return source
    return store.href(source)


def _locate(source: str, store: ObjectStore | None, s3: S3Options | None) -> tuple[ObjectStore, str]:
    """The store and key of a key (under `store`) or a URL (under `store`, or its own folder)."""
    if "://" not in source:
        if store is not None:
            return store, source
        source = Path(source).resolve().as_uri()
    if store is not None:
        try:
            return store, store.key_of(source)
        except StoreError:
            pass
    folder, _, name = source.rstrip("/").rpartition("/")
    return ObjectStore(folder, s3 if s3 is not None else (store.s3 if store else None)), name


def file_info(source: str, store: ObjectStore | None = None, s3: S3Options | None = None) -> FileInfo:
    """Size and checksum of a file given by object-store key (with `store`) or URL, read in 1 MiB
    chunks (never the whole file in memory)."""
    where, key = _locate(source, store, s3)
    digest, size = hashlib.sha256(), 0
    try:
        with where.open(key) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise StoreError(f"cannot read {where.href(key)}: {e}") from e
    return FileInfo(size, MULTIHASH_SHA256 + digest.hexdigest())


@dataclass(frozen=True)
class RasterInfo:
    """What a raster file's header says (read without reading pixels)."""

    dtype: str
    nodata: float | None
    crs: str | None
    grid: TileGrid | None
    count: int


def raster_info(source: str, store: ObjectStore | None = None, s3: S3Options | None = None) -> RasterInfo:
    """The header of a raster given by object-store key or URL (GDAL reads only what it needs)."""
    import rasterio
    from rasterio.errors import RasterioError

    where, key = _locate(source, store, s3)
    try:
        with where.gdal_env(), rasterio.open(where.gdal_path(key)) as ds:
            crs = crs_code(ds.crs.to_wkt()) if ds.crs else None
            t = ds.transform
            grid = None
            if crs is not None and t.b == 0 and t.d == 0 and t.e < 0:
                grid = TileGrid(crs, t, (ds.height, ds.width))
            return RasterInfo(str(ds.dtypes[0]), ds.nodata, crs, grid, ds.count)
    except (RasterioError, OSError) as e:
        raise StoreError(f"cannot read {where.href(key)} as a raster: {e}") from e


# --- the generic builder ---------------------------------------------------------------------------


@dataclass
class Asset:
    """One asset of an item: href, media type, roles, extension fields, and optionally its file's
    size/checksum and its own grid (written as the asset's proj fields; `proj:code` only where its
    CRS differs from the item's)."""

    href: str
    media_type: str | None = None
    roles: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    file: FileInfo | None = None
    grid: TileGrid | None = None

    def to_dict(self, item_grid: TileGrid | None) -> dict[str, Any]:
        doc: dict[str, Any] = {"href": self.href}
        if self.media_type:
            doc["type"] = self.media_type
        if self.title:
            doc["title"] = self.title
        if self.description:
            doc["description"] = self.description
        if self.roles:
            doc["roles"] = list(self.roles)
        doc.update(self.fields)
        if self.grid is not None:
            proj = proj_fields(self.grid)
            if item_grid is not None and crs_code(item_grid.crs) == proj["proj:code"]:
                proj.pop("proj:code")
            doc.update(proj)
        if self.file is not None:
            doc.update(self.file.fields())
        return doc


@dataclass(frozen=True)
class Input:
    """An input item: its id and, where known, the href of its JSON."""

    id: str
    href: str | None = None


def proj_fields(grid: TileGrid) -> dict[str, Any]:
    """The projection extension's fields of a grid (code, shape, transform, bbox in its CRS)."""
    return {
        "proj:code": crs_code(grid.crs),
        "proj:shape": [grid.height, grid.width],
        "proj:transform": grid.proj_transform(),
        "proj:bbox": [float(v) for v in grid.bounds],
    }


def processing_fields(
    lineage: str | None = None,
    level: str | None = None,
    software: Mapping[str, str] | None = None,
    when: dt.datetime | None = None,
) -> dict[str, Any]:
    """The processing extension's fields (lineage, level, software versions, processing time)."""
    out: dict[str, Any] = {}
    if lineage:
        out["processing:lineage"] = lineage
    if level:
        out["processing:level"] = level
    if software:
        out["processing:software"] = dict(software)
    if when is not None:
        out["processing:datetime"] = _iso(when)
    return out


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _keys(doc: Mapping[str, Any]) -> Iterator[str]:
    """The keys of an object and of the objects in its list values (e.g. raster:bands entries)."""
    for k, v in doc.items():
        yield k
        if isinstance(v, list):
            for entry in v:
                if isinstance(entry, Mapping):
                    yield from entry
                else:
                    break


def extensions_for(properties: Mapping[str, Any], assets: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Schema URLs of the extensions whose fields the properties or assets use (top level, or in the
    objects of a list such as `raster:bands`), in a fixed order."""
    found: set[str] = set()
    for doc in (properties, *assets.values()):
        for key in _keys(doc):
            prefix, colon, _ = key.partition(":")
            if colon:
                found.add(prefix)
            elif key in _VERSION_FIELDS:
                found.add("version")
    return [EXT[ext] for prefix, ext in _PREFIXES if prefix in found]


def _bbox_of(geometry: Mapping[str, Any]) -> list[float]:
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], int | float):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        else:
            for sub in c:
                walk(sub)

    walk(geometry["coordinates"])
    return [min(xs), min(ys), max(xs), max(ys)]


def build_item(
    item_id: str,
    *,
    assets: Mapping[str, Asset],
    tile: Tile | None = None,
    grid: TileGrid | None = None,
    geometry: Mapping[str, Any] | None = None,
    datetime: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    collection: str | None = None,
    collection_href: str | None = None,
    inputs: Sequence[Input] = (),
    links: Iterable[Mapping[str, Any]] = (),
    extra_extensions: Iterable[str] = (),
) -> pystac.Item:
    """A STAC 1.1 item; see the module docstring for what is derived.

    Where it lies: `tile` (its id is not used; `item_id` is), or `grid`, or a WGS84 `geometry`
    (which wins over the grid's footprint when both are given). When: `datetime`, or `start` and
    `end`. `collection_href` adds the collection link (required by STAC with `collection`).
    """
    if tile is not None:
        grid = grid or tile.grid
    if geometry is None:
        if grid is None:
            raise ItemError(f"item {item_id!r}: give a tile, a grid or a geometry")
        geometry = grid.geometry()
    if datetime is None and (start is None or end is None):
        raise ItemError(f"item {item_id!r}: give a datetime, or start and end of the period it covers")
    props: dict[str, Any] = {}
    if grid is not None:
        props.update(proj_fields(grid))
    props.update(properties or {})
    if start is not None and end is not None:
        if end < start:
            raise ItemError(f"item {item_id!r}: end {end} lies before start {start}")
        props["start_datetime"], props["end_datetime"] = _iso(start), _iso(end)
    if inputs:
        props["landstack:inputs"] = [i.id for i in inputs]
    asset_docs = {key: a.to_dict(grid) for key, a in assets.items()}
    item = pystac.Item(
        item_id,
        geometry=dict(geometry),
        bbox=_bbox_of(geometry),
        datetime=datetime,
        properties=props,
        collection=collection,
    )
    exts = extensions_for(props, asset_docs)
    item.stac_extensions = list(dict.fromkeys([*exts, *extra_extensions]))
    for key, doc in asset_docs.items():
        item.add_asset(key, pystac.Asset.from_dict(doc))
    if collection_href is not None:
        item.add_link(pystac.Link("collection", collection_href, media_type="application/json"))
    for i in inputs:
        if i.href:
            item.add_link(pystac.Link("derived_from", i.href, media_type="application/geo+json", title=i.id))
    for link in links:
        item.add_link(pystac.Link.from_dict(dict(link)))
    return item


def item_doc(item: pystac.Item) -> dict[str, Any]:
    """The item as JSON, hrefs exactly as given (no resolution against a root catalog)."""
    return item.to_dict(include_self_link=False, transform_hrefs=False)


# --- product layer items ---------------------------------------------------------------------------


def reference_period(year: int) -> tuple[dt.datetime, dt.datetime]:
    """Start and end of a reference year (UTC)."""
    if not 1900 <= year <= 2200:
        raise ItemError(f"reference year {year} is out of range; give a year such as 2021")
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def collection_href_for(collection_id: str, item_id: str) -> str:
    """Relative href from a product item (at `layout.product_item_key`) to its collection JSON."""
    item_dir = posixpath.dirname(layout.product_item_key(collection_id, item_id))
    return posixpath.relpath(f"{layout.COLLECTIONS}/{collection_id}.json", item_dir)


def _resolve_layer(layer: LayerSpec | str, product: ProductSpec | None) -> tuple[ProductSpec, LayerSpec]:
    if isinstance(layer, str):
        return get_layer(layer)
    if product is None:
        return get_layer(layer.id)
    return product, layer


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_raster(item_id: str, key: str, layer: LayerSpec, grid: TileGrid, info: RasterInfo) -> None:
    where = f"item {item_id!r}, asset {key!r}"
    if info.count != 1:
        raise ItemError(f"{where}: the file has {info.count} bands; a layer COG has exactly one")
    if info.dtype != layer.dtype:
        raise ItemError(
            f"{where}, field raster:bands.data_type: the file is {info.dtype} but layer {layer.id} "
            f"is {layer.dtype}; write the file as {layer.dtype}"
        )
    if not _same(info.nodata, float(layer.nodata)):
        raise ItemError(
            f"{where}, field raster:bands.nodata: the file's nodata is {info.nodata} but layer "
            f"{layer.id} declares {layer.nodata}; set nodata={layer.nodata} when writing it"
        )
    if info.grid is None or crs_code(info.grid.crs) != crs_code(layer.grid.crs):
        raise ItemError(
            f"{where}, field proj:code: the file's CRS is {info.crs} but layer {layer.id} is on "
            f"{layer.grid.crs}; reproject it"
        )
    if info.grid.shape != grid.shape:
        raise ItemError(
            f"{where}, field proj:shape: the file has {list(info.grid.shape)} pixels but the tile grid "
            f"has {list(grid.shape)}; write the file on the tile's grid"
        )
    if not all(
        math.isclose(a, b, abs_tol=1e-6)
        for a, b in zip(info.grid.proj_transform(), grid.proj_transform(), strict=True)
    ):
        raise ItemError(
            f"{where}, field proj:transform: the file's transform {info.grid.proj_transform()} differs "
            f"from the tile's {grid.proj_transform()}; write the file on the tile's grid"
        )


def layer_asset(layer: LayerSpec, href: str, key: str | None = None, file: FileInfo | None = None) -> Asset:
    """An asset of a layer's item as its collection's `item_assets` defines it (the layer's COG by
    default), pointing at `href`."""
    templates = item_assets_for(layer)
    key = key or layer.asset_key
    if key not in templates:
        raise ItemError(f"asset {key!r} is not an asset of collection {layer.id} ({', '.join(templates)})")
    fields = dict(templates[key])
    return Asset(
        href=href,
        media_type=fields.pop("type", None),
        roles=list(fields.pop("roles", [])),
        title=fields.pop("title", None),
        description=fields.pop("description", None),
        fields=fields,
        file=file,
    )


def layer_item(
    layer: LayerSpec | str,
    tile: Tile,
    files: Mapping[str, str],
    *,
    year: int,
    store: ObjectStore | None = None,
    item_id: str | None = None,
    product: ProductSpec | None = None,
    inputs: Sequence[Input] = (),
    software: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    collection_href: str | None = None,
    validate: bool = True,
    schemas_dir: str | Path | None = None,
) -> pystac.Item:
    """The STAC item of one product layer tile, consistent with the layer's collection.

    `files` maps asset keys of the collection's `item_assets` (the layer's asset key,
    ``attribute_table``, ``thumbnail``) to object-store keys (with `store`) or URLs. Files are
    read through the store: raster headers are checked against the layer and the tile grid, and
    sizes and checksums are streamed. `software` adds versions to the catalogue's own. The id is
    ``<collection>-<tile>-<year>`` unless `item_id` is given.
    """
    product, layer = _resolve_layer(layer, product)
    item_id = item_id or f"{layer.id}-{tile.id}-{year}"
    templates = item_assets_for(layer)
    if layer.asset_key not in files:
        raise ItemError(
            f"item {item_id!r}: the layer's asset {layer.asset_key!r} is missing; give its file in files"
        )
    for key in files:
        if key not in templates:
            raise ItemError(
                f"item {item_id!r}, asset {key!r}: not an asset of collection {layer.id} "
                f"(item_assets: {', '.join(templates)}); rename it or add it to the collection"
            )
    grid = tile.grid
    if crs_code(grid.crs) != crs_code(layer.grid.crs):
        raise ItemError(
            f"item {item_id!r}, field proj:code: tile {tile.id} is on {grid.crs} but layer {layer.id} "
            f"is delivered on {layer.grid.crs}; use a tile of the layer's grid"
        )
    resolution = layer.grid.resolution / (3600 if layer.grid.resolution_unit == "arcsec" else 1)
    if not math.isclose(grid.resolution, resolution, rel_tol=1e-9):
        raise ItemError(
            f"item {item_id!r}, field proj:transform: tile {tile.id} has {grid.resolution:g} pixels but "
            f"layer {layer.id} has {resolution:g}; build the tile grid at the layer's resolution"
        )
    assets: dict[str, Asset] = {}
    for key, source in files.items():
        try:
            info = file_info(source, store)  # first: a missing file is named as such
            if key == layer.asset_key:
                _check_raster(item_id, key, layer, grid, raster_info(source, store))
        except StoreError as e:
            raise ItemError(f"item {item_id!r}, asset {key!r}: {e}; write the file before the item") from e
        assets[key] = layer_asset(layer, _url(source, store), key, info)
    start, end = reference_period(year)
    when = created or dt.datetime.now(dt.UTC).replace(microsecond=0)
    props: dict[str, Any] = {
        "title": f"{layer.title} {year}, tile {tile.id}",
        "created": _iso(when),
        "version": product.version,
        "sci:citation": citation_text(product, layer, year),
        **processing_fields(
            product.lineage, product.processing_level, {**SOFTWARE, **(software or {})}, when
        ),
        "landstack:product": product.id,
        "landstack:layer": layer.code,
        "landstack:tile": tile.id,
        "landstack:reference_year": year,
    }
    if product.citation.doi:
        props["sci:doi"] = product.citation.doi
    props.update(properties or {})
    item = build_item(
        item_id,
        assets=assets,
        tile=tile,
        datetime=None,
        start=start,
        end=end,
        properties=props,
        collection=layer.id,
        collection_href=collection_href or collection_href_for(layer.id, item_id),
        inputs=inputs,
    )
    if validate:
        check_item(item, schemas_dir)
    return item


def check_item(item: pystac.Item | Mapping[str, Any], schemas_dir: str | Path | None = None) -> None:
    """Validate an item offline; ItemError naming the item and the failing fields."""
    from landstack.catalog.validation import validate_stac

    doc = item_doc(item) if isinstance(item, pystac.Item) else dict(item)
    try:
        result = validate_stac(doc, schemas_dir)
    except CatalogError as e:
        raise ItemError(f"item {doc.get('id')!r} cannot be validated: {e}") from e
    if not result.ok:
        raise ItemError(f"item {doc.get('id')!r} does not validate: {result.reason()}")
