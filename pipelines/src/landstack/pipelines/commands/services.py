"""`landstack services`: local PostgreSQL+pgstac and moto S3 for the demo and the tests."""

from __future__ import annotations

import typer

from landstack.pipelines import local_services
from landstack.pipelines.errors import PipelineError
from landstack.pipelines.settings import get_settings

app = typer.Typer(
    help="Start and stop the local services (PostgreSQL+pgstac, moto S3).", no_args_is_help=True
)


@app.command("up")
def up() -> None:
    """Start PostgreSQL with pgstac and the moto S3 server on loopback (idempotent)."""
    try:
        for st in local_services.up():
            typer.echo(f"{st.name:10} {'up' if st.running else 'DOWN'}  {st.address}")
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e


@app.command("down")
def down() -> None:
    """Stop every local service."""
    local_services.down()
    typer.echo("local services stopped")


@app.command("status")
def status() -> None:
    """Show which local services are running."""
    for st in local_services.status():
        typer.echo(f"{st.name:10} {'up' if st.running else 'down'}  {st.address}")


@app.command("api")
def api(port: int = typer.Option(local_services.STAC_API_PORT, help="loopback port of the STAC API")) -> None:
    """Start the STAC API in the background on 127.0.0.1 (idempotent; 'services down' stops it)."""
    try:
        local_services.stac_api_service(get_settings(), port=port).up(wait_seconds=60)
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"STAC API: http://127.0.0.1:{port}")
