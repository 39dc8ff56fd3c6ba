"""The `landstack` command line: one sub-command group per concern.

Each group lives in landstack.pipelines.commands.<name>; commands parse input and call library
code, nothing more. Errors are raised, never printed by the commands: the root group maps them to
one `error: ...` line and an exit code (commands/_errors.py: 2 for bad input, 1 for a failure).
"""

from __future__ import annotations

import typer

from landstack.pipelines.commands import catalog, demo, publish, services
from landstack.pipelines.commands import features as features_commands
from landstack.pipelines.commands import samples as samples_commands
from landstack.pipelines.commands import step as step_commands
from landstack.pipelines.commands import synth as synth_commands
from landstack.pipelines.commands import train as train_commands
from landstack.pipelines.commands import workflow as workflow_commands
from landstack.pipelines.commands._errors import ErrorMappingGroup

app = typer.Typer(
    name="landstack",
    cls=ErrorMappingGroup,
    help="landstack: produce and publish land-cover and imperviousness layers from Sentinel-2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(catalog.app, name="catalog")
app.add_typer(services.app, name="services")
app.add_typer(publish.app, name="publish")
app.add_typer(train_commands.app, name="train")
app.add_typer(synth_commands.app, name="synth")
app.add_typer(features_commands.app, name="features")
app.add_typer(samples_commands.app, name="samples")
app.add_typer(demo.app, name="demo")
app.add_typer(step_commands.app, name="step")
app.add_typer(workflow_commands.app, name="workflow")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
