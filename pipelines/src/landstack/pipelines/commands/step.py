"""`landstack step`: list the pipeline steps, show their JSON Schemas, run one from JSON.

`step run` is what every workflow container runs: the output JSON goes to stdout (and to
`--output FILE` for workflow output parameters), logs go to stderr. Exit codes: 0 success,
2 bad input (not JSON, a field missing or of the wrong type, an unknown step, an input object
that does not exist), 1 the step failed while running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from landstack.pipelines.commands._errors import FAILED, classify
from landstack.pipelines.errors import BadInputError

app = typer.Typer(help="Typed pipeline steps: list them, show their schemas, run one from JSON.")

log = logging.getLogger("landstack.steps")


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _read_input(source: str) -> Any:
    """The JSON document in FILE, or on stdin for '-'."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as e:
        raise BadInputError(
            f"cannot read step input {source}: {e.strerror or e}; give a JSON file or '-'"
        ) from e
    where = "stdin" if source == "-" else source
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInputError(
            f"step input from {where} is not JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
            "give a JSON object"
        ) from e


@contextlib.contextmanager
def _logs_to_stderr(verbose: bool) -> Iterator[None]:
    """The project's logs on stderr while a step runs (the logger is restored afterwards)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("landstack")
    saved = (root.handlers[:], root.level, root.propagate)
    root.handlers, root.propagate = [handler], False
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        root.handlers, root.propagate = saved[0], saved[2]
        root.setLevel(saved[1])


@app.command("list")
def list_() -> None:
    """Every step with its one-line summary."""
    from landstack.pipelines.steps import list_steps

    steps = list_steps()
    width = max(len(s.name) for s in steps)
    for s in steps:
        typer.echo(f"{s.name:<{width}}  {s.summary}")


@app.command("schema")
def schema(name: Annotated[str, typer.Argument(help="step name (see `landstack step list`)")]) -> None:
    """The step's input and output JSON Schema."""
    from landstack.pipelines.steps import get_step

    try:
        s = get_step(name)
    except BadInputError as e:
        raise _fail(str(e), 2) from e
    typer.echo(json.dumps({"step": s.name, "summary": s.summary, **s.schemas()}, indent=2))


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="step name (see `landstack step list`)")],
    input_: Annotated[str, typer.Option("--input", "-i", help="JSON input file, or '-' for stdin")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="also write the output JSON here")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs and tracebacks")] = False,
) -> None:
    """Validate the JSON input against the step's schema, run the step, print its output JSON."""
    from landstack.pipelines.steps import run_step

    try:
        data = _read_input(input_)
        # Libraries that print would corrupt the JSON on stdout: while the step runs, stdout is stderr.
        with _logs_to_stderr(verbose), contextlib.redirect_stdout(sys.stderr):
            try:
                result = run_step(name, data)
            except Exception:
                log.debug("step %s failed", name, exc_info=True)
                raise
    except Exception as e:
        # The CLI's one mapping decides bad input (2) or failure (1); whatever it does not know is
        # still a failure of this step: the container exits 1 with one line, the traceback with -v.
        code, message = classify(e) or (FAILED, f"step {name!r} failed: {type(e).__name__}: {e}")
        raise _fail(message, code) from e
    text = json.dumps(result, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    typer.echo(text)
