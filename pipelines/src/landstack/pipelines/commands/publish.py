"""`landstack publish`: load collections and items from the object store into pgstac or the STAC API."""

from __future__ import annotations

import typer

from landstack.pipelines import validate
from landstack.pipelines.commands._errors import ErrorMappingGroup
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.settings import get_settings
from landstack.storage.layout import COLLECTIONS as COLLECTIONS_PREFIX
from landstack.storage.layout import PRODUCTS as PRODUCTS_PREFIX

app = typer.Typer(cls=ErrorMappingGroup, help="Publish collections and items into the STAC catalogue.")

_DSN_SCHEMES = ("postgresql", "postgres")


@app.callback(invoke_without_command=True)
def main(
    pgstac: bool = typer.Option(
        False, "--pgstac", help="load straight into pgstac (LANDSTACK_PG_* database)"
    ),
    dsn: str | None = typer.Option(None, "--dsn", help="load straight into this pgstac database"),
    api: str | None = typer.Option(
        None, "--api", help="publish through this STAC API (token: LANDSTACK_STAC_API_TOKEN)"
    ),
    collections: str = typer.Option(COLLECTIONS_PREFIX, help="store prefix of the collection JSON files"),
    items: list[str] = typer.Option([PRODUCTS_PREFIX], help="store prefix of item JSON/NDJSON files"),
) -> None:
    """Upsert every collection, then every valid item whose assets exist (default target: --pgstac)."""
    from landstack.pipelines.publish import ApiTarget, PgstacTarget, PublishError, Target, publish

    s = get_settings()
    if api and (pgstac or dsn):
        raise BadInputError("choose one target: --api URL, or --pgstac / --dsn DSN")
    if api is not None:
        api = validate.check_url(api, "--api", schemes=validate.HTTP_SCHEMES, allow_path=False)
    if dsn is not None:
        dsn = validate.check_url(dsn, "--dsn", schemes=_DSN_SCHEMES, allow_path=False)
    collections = validate.check_key(collections, "--collections")
    items = [validate.check_key(prefix, "--items") for prefix in items]
    store = validate.output_store(s)
    if not any(
        store.list(prefix, ".json") or store.list(prefix, ".ndjson") for prefix in [collections, *items]
    ):
        raise BadInputError(
            f"nothing to publish: no JSON under {store.href(collections)} or "
            f"{', '.join(store.href(p) for p in items)}; "
            "check --collections / --items and LANDSTACK_STORE_URL"
        )
    target: Target
    if api:
        token = s.stac_api_token.get_secret_value() if s.stac_api_token else None
        target = ApiTarget(api, token)
    else:
        target = PgstacTarget(dsn or s.pg_dsn)
    try:
        report = publish(store, target, collections_prefix=collections, items_prefixes=items, settings=s)
    finally:
        target.close()
    for r in report.refused:
        typer.echo(f"refused {r.id} ({r.source}): {r.reason}", err=True)
    typer.echo(
        f"published {len(report.collections)} collections and {report.items_loaded} items to {report.target} "
        f"in {report.seconds:.1f} s ({report.items_per_second:.0f} items/s); {len(report.refused)} refused"
    )
    if report.refused:
        raise PublishError(
            f"{len(report.refused)} documents were refused (listed above); fix and publish again"
        )
