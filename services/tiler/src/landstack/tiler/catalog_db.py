"""Reads of the pgstac database the tiler needs beside titiler: items of an AOI per year, years
and collections for the web map. Always through pgstac's own SQL functions (the API's view).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import Error as PsycopgError
from psycopg_pool import ConnectionPool

from landstack.tiler.errors import AoiError, TilerError


def _search(pool: ConnectionPool, body: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        with pool.connection() as conn:
            row = conn.execute("SELECT pgstac.search(%s::text::jsonb)", (json.dumps(body),)).fetchone()
    except PsycopgError as e:
        raise TilerError(f"pgstac search failed for {body.get('collections')}: {e}") from e
    result = row[0] if row else None
    return list((result or {}).get("features") or [])


def _year_of(item: Mapping[str, Any]) -> int:
    props = item.get("properties") or {}
    stamp = props.get("start_datetime") or props.get("datetime") or ""
    return int(str(stamp)[:4])


def items_for(
    pool: ConnectionPool,
    collection_id: str,
    aoi: Mapping[str, Any],
    years: Sequence[int] | None,
    max_items: int,
) -> dict[int, list[dict[str, Any]]]:
    """Items of a collection intersecting the AOI, by reference year (every year when `years` is None)."""
    body: dict[str, Any] = {"collections": [collection_id], "intersects": aoi, "limit": max_items + 1}
    by_year: dict[int, list[dict[str, Any]]] = {}
    if years:
        for year in sorted(set(years)):
            found = _search(pool, {**body, "datetime": f"{year}-01-01T00:00:00Z/{year}-12-31T23:59:59Z"})
            by_year[year] = [f for f in found if _year_of(f) == year]
    else:
        for f in _search(pool, body):
            by_year.setdefault(_year_of(f), []).append(f)
    for year, found in by_year.items():
        if len(found) > max_items:
            raise AoiError(
                f"the AOI touches more than {max_items} items of {collection_id} in {year}; "
                "send a smaller AOI or raise LANDSTACK_TILER_MAX_ITEMS"
            )
    return by_year


def item_at(
    pool: ConnectionPool, collection_id: str, lon: float, lat: float, year: int | None
) -> dict[str, Any] | None:
    """The item of a collection covering a WGS84 point (in a reference year), if any."""
    body: dict[str, Any] = {
        "collections": [collection_id],
        "intersects": {"type": "Point", "coordinates": [lon, lat]},
        "limit": 1,
    }
    if year is not None:
        body["datetime"] = f"{year}-01-01T00:00:00Z/{year}-12-31T23:59:59Z"
    found = _search(pool, body)
    return found[0] if found else None


def collections_with_years(pool: ConnectionPool) -> dict[str, dict[str, Any]]:
    """Every collection that has items: the reference years of its items and their WGS84 bbox."""
    sql = (
        "SELECT collection, array_agg(DISTINCT extract(year FROM datetime)::int), "
        "ST_XMin(ST_Extent(geometry)), ST_YMin(ST_Extent(geometry)), "
        "ST_XMax(ST_Extent(geometry)), ST_YMax(ST_Extent(geometry)) "
        "FROM pgstac.items GROUP BY collection"
    )
    try:
        with pool.connection() as conn:
            rows = conn.execute(sql).fetchall()
    except PsycopgError as e:
        raise TilerError(f"cannot list the collections of the pgstac database: {e}") from e
    return {
        str(c): {"years": sorted(int(y) for y in ys), "bbox": [float(v) for v in (x0, y0, x1, y1)]}
        for c, ys, x0, y0, x1, y1 in rows
    }
