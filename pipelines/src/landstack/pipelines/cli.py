"""The `landstack` command line: one sub-command group per concern.

Each group lives in landstack.pipelines.commands.<name>; commands parse input and call library
code, nothing more.
"""

from __future__ import annotations

import typer

from landstack.pipelines.commands import catalog, services

app = typer.Typer(
    name="landstack",
    help="landstack: produce and publish land-cover and imperviousness layers from Sentinel-2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(catalog.app, name="catalog")
app.add_typer(services.app, name="services")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
