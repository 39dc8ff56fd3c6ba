"""The step contract and registry: typed functions run from JSON, idempotently.

A step is a plain function ``f(inp: SomeInput) -> SomeOutput`` whose input and output are pydantic
models holding JSON values only (object-store URLs, tile ids, parameters). It is registered with
:func:`step`; :func:`run_step` runs any step from a JSON-like dict and returns a dict, which is
what `landstack step run` (the command every Argo container runs) and the local runner call.

Idempotency: after a successful run, a record of the input and output goes to
``runs/steps/<step>/<input hash>.json`` in the object store, written after the outputs. A second
run with the same input finds the record, checks that every object the output names still exists,
and returns the recorded output without writing anything. ``force: true`` runs the step anyway.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from landstack.pipelines.errors import BadInputError
from landstack.pipelines.settings import get_settings
from landstack.storage import ObjectStore
from landstack.storage.layout import RUNS

log = logging.getLogger("landstack.steps")

# Modules that register steps when imported; imported on first use so that `landstack --help`
# does not pay for them (their heavy dependencies are imported inside the step functions).
_GROUPS = ("prepare", "training", "publishing", "orchestration", "production", "products", "model_selection")
RECORDS = f"{RUNS}/steps"
_STORE: contextvars.ContextVar[ObjectStore | None] = contextvars.ContextVar(
    "landstack_step_store", default=None
)


class StepInput(BaseModel):
    """Base of every step input: JSON values only, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="run even when the outputs of this input already exist")


class StepOutput(BaseModel):
    """Base of every step output: JSON values only."""

    model_config = ConfigDict(extra="forbid")


In = TypeVar("In", bound=StepInput)
Out = TypeVar("Out", bound=StepOutput)


@dataclass(frozen=True)
class Step:
    """A registered step."""

    name: str
    func: Callable[[Any], StepOutput]
    input_model: type[StepInput]
    output_model: type[StepOutput]
    cached: bool = True

    @property
    def summary(self) -> str:
        """First line of the step function's docstring."""
        return (self.func.__doc__ or "").strip().splitlines()[0] if self.func.__doc__ else ""

    def schemas(self) -> dict[str, Any]:
        """Input and output JSON Schema."""
        return {
            "input": self.input_model.model_json_schema(),
            "output": self.output_model.model_json_schema(),
        }


_STEPS: dict[str, Step] = {}


def step(
    name: str, input_model: type[In], output_model: type[Out], *, cached: bool = True
) -> Callable[[Callable[[In], Out]], Callable[[In], Out]]:
    """Register a step function under `name` (`cached=False`: always runs; its target is idempotent)."""

    def register(func: Callable[[In], Out]) -> Callable[[In], Out]:
        if name in _STEPS and _STEPS[name].func is not func:
            raise ValueError(f"step {name!r} is registered twice")
        _STEPS[name] = Step(name, func, input_model, output_model, cached)
        return func

    return register


def _load() -> dict[str, Step]:
    for group in _GROUPS:
        importlib.import_module(f"landstack.pipelines.steps.{group}")
    return _STEPS


def list_steps() -> list[Step]:
    """Every registered step, by name."""
    return [s for _, s in sorted(_load().items())]


def get_step(name: str) -> Step:
    """The step called `name`; BadInputError naming the known steps otherwise."""
    steps = _load()
    if name not in steps:
        raise BadInputError(f"unknown step {name!r}; known steps: {', '.join(sorted(steps))}")
    return steps[name]


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"field '{where}' is missing: add it"
    if err["type"] == "extra_forbidden":
        return f"field '{where}' is not an input of this step: remove it or check its spelling"
    if not where:  # a check across fields names its fields itself
        return msg
    given = err.get("input")
    shown = json.dumps(given, default=str) if not isinstance(given, dict) else "{...}"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"field '{where}': {msg} (given {shown}): change it"


def parse_input(s: Step, data: Any) -> StepInput:
    """Validate `data` against the step's input model; BadInputError naming each bad field."""
    if not isinstance(data, dict):
        raise BadInputError(
            f"step {s.name!r} needs a JSON object as input, got {type(data).__name__}; "
            f"see `landstack step schema {s.name}`"
        )
    try:
        return s.input_model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(_describe(err) for err in e.errors())
        raise BadInputError(
            f"step {s.name!r} input is invalid: {problems}; see `landstack step schema {s.name}`"
        ) from e


def input_hash(inp: StepInput) -> str:
    """Hash of the input without `force`: equal inputs give equal records."""
    doc = inp.model_dump(mode="json", exclude={"force"})
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:20]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def output_keys(store: ObjectStore, output: dict[str, Any]) -> list[str]:
    """Keys of the store objects an output names (the URLs under the store's root)."""
    root = store.url + "/"
    return sorted({u[len(root) :] for u in _strings(output) if u.startswith(root)})


def _recorded(store: ObjectStore, s: Step, key: str) -> dict[str, Any] | None:
    if not store.exists(key):
        return None
    try:
        record = store.read_json(key)
        output = record["output"]
        missing = [k for k in record.get("objects", []) if not store.exists(k)]
    except Exception as e:  # an unreadable record only means the step runs again
        log.warning("step %s: ignoring unreadable record %s: %s", s.name, store.href(key), e)
        return None
    if missing:
        log.info(
            "step %s: %d recorded outputs are gone (e.g. %s); running again", s.name, len(missing), missing[0]
        )
        return None
    return dict(output)


def current_store() -> ObjectStore:
    """The object store of the running step: the one given to run_step, else the settings' store."""
    return _STORE.get() or get_settings().store()


def run_step(name: str, data: Any, store: ObjectStore | None = None) -> dict[str, Any]:
    """Validate `data` against step `name`'s input, run it (or reuse its recorded output), return the output.

    Bad input raises BadInputError before anything runs; failures of the step itself propagate.
    """
    s = get_step(name)
    inp = parse_input(s, data)
    store = store or get_settings().store()
    key = f"{RECORDS}/{s.name}/{input_hash(inp)}.json"
    if s.cached and not inp.force:
        previous = _recorded(store, s, key)
        if previous is not None:
            log.info("step %s: outputs for this input exist (%s); nothing to do", s.name, store.href(key))
            return s.output_model.model_validate(previous).model_dump(mode="json")
    log.info("step %s: running", s.name)
    token = _STORE.set(store)
    try:
        out = s.func(inp)
    finally:
        _STORE.reset(token)
    if not isinstance(out, s.output_model):
        raise TypeError(f"step {s.name} returned {type(out).__name__}, not {s.output_model.__name__}")
    result = out.model_dump(mode="json")
    if s.cached:
        record = {
            "step": s.name,
            "input": inp.model_dump(mode="json", exclude={"force"}),
            "output": result,
            "objects": output_keys(store, result),
        }
        store.put_json(key, record)
    return result
