"""`landstack workflow`: list, render and run the project's Argo workflows on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from landstack.pipelines.errors import BadInputError

app = typer.Typer(
    help="The Argo workflows (Hera): list them, render their YAML, run one locally.", no_args_is_help=True
)


@app.command("list")
def list_() -> None:
    """List the workflows and where their rendered YAML lives."""
    from landstack.pipelines import workflows

    for name in workflows.names():
        typer.echo(f"{name}\t{workflows.rendered_path(name)}")


@app.command()
def render(
    check: Annotated[bool, typer.Option("--check", help="fail when a committed YAML differs")] = False,
) -> None:
    """Render every Hera workflow module to the YAML committed beside it."""
    from landstack.pipelines import workflows

    if check:
        stale = [
            n for n in workflows.names() if workflows.rendered_path(n).read_text() != workflows.render(n)
        ]
        if stale:
            raise BadInputError(
                f"rendered YAML out of date for {', '.join(stale)}: run `landstack workflow render`"
            )
        typer.echo("rendered workflows are up to date")
        return
    for path in workflows.write_rendered():
        typer.echo(f"wrote {path}")


def _parameters(values: list[str]) -> dict[str, str]:
    params = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise BadInputError(f"parameter {v!r} is not KEY=VALUE: write e.g. -p year=2024")
        params[key] = value
    return params


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="workflow name (see `landstack workflow list`)")],
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="KEY=VALUE")] = None,
    parallelism: Annotated[int, typer.Option(min=1, help="steps running at once")] = 2,
    in_process: Annotated[bool, typer.Option("--in-process", help="run steps in this process")] = False,
) -> None:
    """Run a workflow's rendered YAML with the local runner (resumes an interrupted run)."""
    from landstack.pipelines import workflows
    from landstack.pipelines.runner import LocalRunner, RunOptions
    from landstack.pipelines.runner.local_resources import default_handlers
    from landstack.pipelines.settings import get_settings

    settings = get_settings()
    params = _parameters(parameter or [])

    def progress(node: str, phase: str) -> None:
        if phase in ("Succeeded", "Failed", "Skipped"):
            typer.echo(f"{phase:<9} {node}", err=True)

    options = RunOptions(
        runs_dir=settings.local_dir / "runs",
        parallelism=parallelism,
        mode="in-process" if in_process else "subprocess",
        resource_handlers=default_handlers(settings.local_dir),
        on_node=progress,
        context=settings.store_url,
    )
    result = LocalRunner(workflows.load(name), options).run(params)
    resumed = "resumed, " if result.resumed else ""
    typer.echo(f"{name}: {result.phase} ({resumed}record {result.folder / 'record.json'})")
