"""`landstack services`: local PostgreSQL+pgstac and moto S3 for the demo and the tests."""

from __future__ import annotations

import typer

from landstack.pipelines import local_services, validate
from landstack.pipelines.commands._errors import ErrorMappingGroup
from landstack.pipelines.settings import get_settings

app = typer.Typer(
    cls=ErrorMappingGroup,
    help="Start and stop the local services (PostgreSQL+pgstac, moto S3).",
    no_args_is_help=True,
)


@app.command("up")
def up() -> None:
    """Start PostgreSQL with pgstac, the moto S3 server and the tiler on loopback (idempotent)."""
    for st in local_services.up():
        typer.echo(f"{st.name:10} {'up' if st.running else 'DOWN'}  {st.address}")
    typer.echo(f"Map: {local_services.map_url()}")


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
    port = int(validate.check_range(port, "--port", 1024, 65535))
    local_services.stac_api_service(get_settings(), port=port).up(wait_seconds=60)
    typer.echo(f"STAC API: http://127.0.0.1:{port}")
