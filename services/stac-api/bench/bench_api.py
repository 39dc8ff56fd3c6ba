"""Benchmark of the STAC API and of publishing, written to bench-results/stac_api.json.

1. Bulk publish throughput: 10,000 product items published with `landstack publish`'s library
   code from a file:// store (offline validation, asset checks, pypgstac upsert), then 10,000
   more through the API's bulk transactions endpoint.
2. Search latency: with 100,000 items loaded (the rest bulk-loaded straight with pypgstac), 8
   concurrent loopback clients send bbox + datetime + CQL2-filter searches; p50/p95 latency.

It creates (and drops) its own database in the local PostgreSQL (`landstack services up`) and
runs the API as a separate process, as deployed. Bounded: a fixed number of requests.

    python services/stac-api/bench/bench_api.py [--items 100000] [--requests 100] [--out bench-results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

from landstack.catalog import get_layer
from landstack.catalog.build import build_catalogue
from landstack.catalog.items import build_item, item_doc, layer_asset, reference_period
from landstack.catalog.validation import StacValidator
from landstack.pipelines.publish import ApiTarget, PgstacTarget, publish
from landstack.pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[3]
PG = "postgresql://postgres:postgres@127.0.0.1:55432"
PUBLISH_N = 10_000
CLIENTS = 8
COLLECTIONS = ("hrl-imperviousness-imd", "clcplus-backbone-ras", "emc-built-s-10m")


def _item(collection: str, n: int, href: str) -> dict[str, Any]:
    """A product item on a 0.25° grid over Europe, one reference year in 2015..2024."""
    _, layer = get_layer(collection)
    rnd = random.Random(n)
    lon, lat = -10.0 + (n % 160) * 0.25, 35.0 + ((n // 160) % 120) * 0.25
    start, end = reference_period(2015 + (n // 19_200) % 10)
    item = build_item(
        f"{collection}-{n:06d}",
        geometry={
            "type": "Polygon",
            "coordinates": [
                [[lon, lat], [lon + 0.25, lat], [lon + 0.25, lat + 0.25], [lon, lat + 0.25], [lon, lat]]
            ],
        },
        start=start,
        end=end,
        properties={
            "proj:code": layer.grid.crs,
            "landstack:coverage": round(rnd.uniform(0, 100), 2),
            "landstack:tile": f"E{40 + n % 160:03d}N{30 + (n // 160) % 120:03d}",
        },
        assets={layer.asset_key: layer_asset(layer, href)},
        collection=collection,
        collection_href=f"../../../catalog/collections/{collection}.json",
    )
    return item_doc(item)


def _write_store(root: Path, collection: str, start: int, n: int) -> None:
    """n items as NDJSON files of 1,000, each with its own (stub) COG beside it."""
    _, layer = get_layer(collection)
    for first in range(start, start + n, 1000):
        folder = root / "products" / collection / f"batch-{first:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(first, min(first + 1000, start + n)):
            (folder / f"{k:06d}-{layer.asset_key}.tif").write_bytes(b"II*\x00")
            lines.append(json.dumps(_item(collection, k, f"./{k:06d}-{layer.asset_key}.tif")))
        (folder / "items.ndjson").write_text("\n".join(lines) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _create_db(name: str) -> str:
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{PG}/{name}"
    db = PgstacDB(dsn=dsn)
    Migrate(db).run_migration()
    db.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO pgstac, public")
        # A filterable numeric property is declared (and indexed) as a queryable, as deployed.
        conn.execute(
            "INSERT INTO queryables (name, definition, property_wrapper, property_index_type) "
            "VALUES ('landstack:coverage', '{\"type\": \"number\"}', 'to_float', 'BTREE')"
        )
    return dsn


def _drop_db(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start_api(dbname: str, port: int, token: str) -> subprocess.Popen[bytes]:
    import hashlib

    env = {
        **os.environ,
        "LANDSTACK_API_DB_NAME": dbname,
        "LANDSTACK_API_PORT": str(port),
        "LANDSTACK_API_DB_MAX_CONNECTIONS": "16",
        "LANDSTACK_API_KEYS": json.dumps(
            [
                {
                    "name": "bench",
                    "sha256": hashlib.sha256(token.encode()).hexdigest(),
                    "scopes": ["read", "write"],
                }
            ]
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "landstack.stac_api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_mgmt/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the STAC API did not start")


def _filler(collection: str, start: int, n: int) -> Iterator[dict[str, Any]]:
    for k in range(start, start + n):
        yield _item(collection, k, f"file:///bench/{collection}/{k:06d}.tif")


def _search_bodies(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    bodies = []
    for _ in range(n):
        lon, lat = rnd.uniform(-10, 28), rnd.uniform(35, 62)
        year = rnd.randint(2015, 2024)
        bodies.append(
            {
                "bbox": [lon, lat, lon + 2.0, lat + 2.0],
                "datetime": f"{year}-03-01T00:00:00Z/{year}-09-30T23:59:59Z",
                "filter": {
                    "op": ">=",
                    "args": [{"property": "landstack:coverage"}, rnd.choice([10, 50, 90])],
                },
                "filter-lang": "cql2-json",
                "collections": [rnd.choice(COLLECTIONS)],
                "limit": 10,
            }
        )
    return bodies


def _load_test(url: str, requests_per_client: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            http.post(f"{url}/search", json=_search_bodies(1, 10_000 + i)[0])  # warm the connection
            for body in _search_bodies(requests_per_client, i):
                t = time.perf_counter()
                resp = http.post(f"{url}/search", json=body)
                elapsed = time.perf_counter() - t
                with lock:
                    if resp.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failures.append(f"{resp.status_code}: {resp.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "clients": CLIENTS,
        "requests": len(latencies) + len(failures),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "requests_per_s": round(len(latencies) / wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000, help="items loaded for the search benchmark")
    ap.add_argument("--requests", type=int, default=100, help="searches per client")
    ap.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = ap.parse_args()

    dbname = f"landstack_bench_api_{os.getpid()}"
    dsn = _create_db(dbname)
    token = uuid.uuid4().hex
    port = _free_port()
    api = _start_api(dbname, port, token)
    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        # the machine may be shared: its load puts the figures in context
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }
    try:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="landstack-bench-") as tmp:
            root = Path(tmp) / "store"
            build_catalogue(root / "catalog")
            t = time.perf_counter()
            _write_store(root, COLLECTIONS[0], 0, PUBLISH_N)
            _write_store(root, COLLECTIONS[1], 0, PUBLISH_N)
            result["store_written_s"] = round(time.perf_counter() - t, 1)
            schemas = REPO.parent / "shared" / "schemas" / "stac"
            settings = Settings(
                store_url=root.as_uri(),
                stac_schemas_dir=schemas if schemas.is_dir() else None,
                local_dir=Path(tmp) / "local",
            )
            store = settings.store()
            validator = StacValidator(settings.stac_schemas_dir)

            pg_target = PgstacTarget(dsn)
            try:
                report = publish(
                    store,
                    pg_target,
                    items_prefixes=[f"products/{COLLECTIONS[0]}"],
                    validator=validator,
                    settings=settings,
                )
            finally:
                pg_target.close()
            assert report.ok and report.items_loaded == PUBLISH_N, report.refused[:3]
            result["publish_pgstac"] = {
                "items": report.items_loaded,
                "seconds": round(report.seconds, 2),
                "items_per_s": round(report.items_per_second),
            }

            api_target = ApiTarget(url, token)
            try:
                report = publish(
                    store,
                    api_target,
                    items_prefixes=[f"products/{COLLECTIONS[1]}"],
                    validator=validator,
                    settings=settings,
                )
            finally:
                api_target.close()
            assert report.ok and report.items_loaded == PUBLISH_N, report.refused[:3]
            result["publish_api_bulk"] = {
                "items": report.items_loaded,
                "seconds": round(report.seconds, 2),
                "items_per_s": round(report.items_per_second),
            }

        # Filler up to --items, straight through pypgstac (what is measured above is publishing).
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods

        rest = max(0, args.items - 2 * PUBLISH_N)
        t = time.perf_counter()
        db = PgstacDB(dsn=dsn)
        try:
            Loader(db).load_items(
                _filler(COLLECTIONS[2], 0, rest), insert_mode=Methods.insert, chunksize=20_000
            )
        finally:
            db.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
        result["filler"] = {"items": rest, "seconds": round(time.perf_counter() - t, 1)}
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM pgstac.items").fetchone()
        result["items_loaded"] = int(row[0]) if row else 0

        result["search"] = {
            "query": "bbox 2x2 deg + datetime (7 months) + CQL2 coverage >= X, limit 10",
            **_load_test(url, args.requests),
        }
        result["total_s"] = round(time.perf_counter() - t0, 1)
        result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
        result["targets"] = {"publish_items_per_s": 500, "search_p95_ms": 150}
        result["meets_targets"] = {
            "publish": result["publish_pgstac"]["items_per_s"] >= 500,
            "search": result["search"]["p95_ms"] < 150,
        }
    finally:
        api.terminate()
        api.wait(timeout=30)
        _drop_db(dbname)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "stac_api.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
