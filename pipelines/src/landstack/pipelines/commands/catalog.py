"""`landstack catalog`: the product catalogue."""

from __future__ import annotations

from pathlib import Path

import typer

from landstack.catalog import load_products
from landstack.catalog.build import build_catalogue
from landstack.pipelines import validate
from landstack.pipelines.commands._errors import ErrorMappingGroup

app = typer.Typer(
    cls=ErrorMappingGroup,
    help="The product catalogue: specs, STAC collections and INSPIRE records.",
    no_args_is_help=True,
)


@app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="folder to write collections/*.json and inspire/*.xml into"),
    api_url: str | None = typer.Option(
        None, help="public STAC API root; describedby links then point at the API's inspire.xml"
    ),
) -> None:
    """Write every collection JSON and every INSPIRE XML under OUT."""
    out = validate.output_folder(out, "--out")
    if api_url is not None:
        api_url = validate.check_url(api_url, "--api-url", schemes=validate.HTTP_SCHEMES, allow_path=False)
    load_products()  # every spec is validated before the first file is written
    written = build_catalogue(out, api_url=api_url)
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
