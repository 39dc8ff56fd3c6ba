"""Which failures are the user's input and which are the system's: one classification of the
project's errors into exit codes and one-line messages.

- bad input (a value, file or table the user gave) -> exit 2;
- a runtime failure (a service unreachable, a step failed) -> exit 1;
- anything else (None) is a bug and keeps its traceback.

The CLI (commands/_errors.py) and the local workflow runner (whether a retry can help) both use it.
"""

from __future__ import annotations

from typing import Any

from landstack.catalog.errors import CatalogError
from landstack.models import errors as model_errors
from landstack.pipelines import errors as pipeline_errors
from landstack.storage import StoreError

BAD_INPUT = 2
FAILED = 1

# Pipeline and model errors that mean "the input is wrong" rather than "something failed while working".
_BAD_PIPELINE = (
    pipeline_errors.BadInputError,
    pipeline_errors.ConfigError,
    pipeline_errors.EmptySearchError,
    pipeline_errors.MissingAssetError,
    pipeline_errors.FeatureError,
    pipeline_errors.SampleError,
)
_BAD_MODEL = (model_errors.SamplesError, model_errors.UnitsError, model_errors.ModelFileError)

_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or "(no message)"


def _pydantic_message(e: Any) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "input"
        parts.append(f"{where}: {err.get('msg')} (got {err.get('input')!r})")
    return f"invalid {e.title}: " + "; ".join(parts)


def classify(e: BaseException) -> tuple[int, str] | None:
    """Exit code and one-line message for a project error; None for anything else (a bug)."""
    import pydantic

    if isinstance(e, pydantic.ValidationError):
        return BAD_INPUT, _one_line(_pydantic_message(e))
    if isinstance(e, CatalogError):
        return BAD_INPUT, _one_line(str(e))
    if isinstance(e, _BAD_PIPELINE + _BAD_MODEL):
        return BAD_INPUT, _one_line(str(e))
    if isinstance(e, pipeline_errors.PipelineError | model_errors.ModelError):
        return FAILED, _one_line(str(e))
    if isinstance(e, StoreError):
        cause = e.__cause__
        runtime = isinstance(cause, OSError) and not isinstance(cause, _MISSING)
        return (FAILED if runtime else BAD_INPUT), _one_line(str(e))
    # A closed stdout (`landstack ... | head`) raises BrokenPipeError, a ConnectionError too: not a service.
    if isinstance(e, ConnectionError) and not isinstance(e, BrokenPipeError):
        return FAILED, _one_line(f"cannot connect: {e}; is the service running?")
    return None
