"""`landstack publish`: load collections and items from the object store into pgstac or the STAC API."""

from __future__ import annotations

import typer

from landstack.catalog import CatalogError
from landstack.pipelines.errors import PipelineError
from landstack.pipelines.layout import COLLECTIONS_PREFIX, PRODUCTS_PREFIX
from landstack.pipelines.settings import get_settings

app = typer.Typer(help="Publish collections and items into the STAC catalogue.")


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
    from landstack.pipelines.publish import ApiTarget, PgstacTarget, Target, publish
    from landstack.pipelines.store import ObjectStore

    s = get_settings()
    if api and (pgstac or dsn):
        typer.echo("error: choose one target: --api URL, or --pgstac / --dsn DSN", err=True)
        raise typer.Exit(2)
    try:
        target: Target
        if api:
            token = s.stac_api_token.get_secret_value() if s.stac_api_token else None
            target = ApiTarget(api, token)
        else:
            target = PgstacTarget(dsn or s.pg_dsn)
        try:
            report = publish(
                ObjectStore.from_settings(s),
                target,
                collections_prefix=collections,
                items_prefixes=items,
                settings=s,
            )
        finally:
            target.close()
    except (PipelineError, CatalogError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    for r in report.refused:
        typer.echo(f"refused {r.id} ({r.source}): {r.reason}", err=True)
    typer.echo(
        f"published {len(report.collections)} collections and {report.items_loaded} items to {report.target} "
        f"in {report.seconds:.1f} s ({report.items_per_second:.0f} items/s); {len(report.refused)} refused"
    )
    if report.refused:
        raise typer.Exit(1)
