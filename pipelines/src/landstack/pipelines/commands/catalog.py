"""`landstack catalog`: the product catalogue."""

from __future__ import annotations

from pathlib import Path

import typer

from landstack.catalog import CatalogError, load_products
from landstack.catalog.build import build_catalogue

app = typer.Typer(
    help="The product catalogue: specs, STAC collections and INSPIRE records.", no_args_is_help=True
)


@app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="folder to write collections/*.json and inspire/*.xml into"),
    api_url: str | None = typer.Option(
        None, help="public STAC API root; describedby links then point at the API's inspire.xml"
    ),
) -> None:
    """Write every collection JSON and every INSPIRE XML under OUT."""
    try:
        written = build_catalogue(out, api_url=api_url)
    except CatalogError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(
        f"wrote {len(written.collections)} collections and {len(written.records)} INSPIRE records to {out}"
    )


@app.command("list")
def list_layers() -> None:
    """List every product layer (collection id, dtype, nodata, grid)."""
    for product in load_products():
        for layer in product.layers:
            g = layer.grid
            unit = "m" if g.resolution_unit == "m" else '"'
            typer.echo(
                f"{layer.id:34} {layer.dtype:7} nodata={layer.nodata:<11} {g.crs} {g.resolution:g}{unit}"
            )
