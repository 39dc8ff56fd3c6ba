"""One mapping from the project's errors to the CLI's exit codes and messages.

- bad input (a value, file or table the user gave) -> `error: <message>` on stderr, exit 2;
- a runtime failure (a service unreachable, a step failed) -> `error: <message>` on stderr, exit 1;
- anything else is a bug and keeps its traceback.

Commands raise; they never print errors or choose exit codes themselves.
"""

from __future__ import annotations

from typing import Any

import typer
import typer.core

from landstack.pipelines.failures import BAD_INPUT, FAILED, classify

__all__ = ["BAD_INPUT", "FAILED", "ErrorMappingGroup", "classify"]


class ErrorMappingGroup(typer.core.TyperGroup):
    """The root command group: turns project errors into one stderr line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            found = classify(e)  # None for typer's own exits and usage errors, and for bugs
            if found is None:
                raise
            code, message = found
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code) from None
