"""How one container template runs on this machine: the step it names, in-process or as a subprocess.

Every template of the project's workflows runs `landstack step run NAME --input PATH`, with the
input JSON delivered as a raw artifact at PATH. The runner writes that artifact into the node's
folder and calls the same step: through the step registry in this process, or as the same
command in a child process (separate memory, a log per step, killable).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from landstack.pipelines.runner.errors import TaskFailedError, WorkflowDefinitionError

Mode = Literal["subprocess", "in-process"]


@dataclass(frozen=True)
class StepCall:
    """A container template resolved to a step name and its input file."""

    step: str
    input_path: Path
    timeout: float | None


def resolve_call(template: dict[str, Any], workdir: Path) -> StepCall:
    """Map a substituted container template onto a step call, writing its raw input artifacts."""
    container = template.get("container") or {}
    argv = [*container.get("command", []), *container.get("args", [])]
    try:
        at = argv.index("step")
        if argv[at + 1] != "run":
            raise ValueError
        step = argv[at + 2]
        input_ref = argv[argv.index("--input") + 1]
    except (ValueError, IndexError) as e:
        raise WorkflowDefinitionError(
            f"template {template.get('name')!r} runs {argv!r}; the local runner runs only "
            "`landstack step run NAME --input PATH` containers"
        ) from e
    workdir.mkdir(parents=True, exist_ok=True)
    input_path: Path | None = None
    for artifact in (template.get("inputs") or {}).get("artifacts", []):
        raw = artifact.get("raw")
        if raw is None:
            raise WorkflowDefinitionError(
                f"template {template.get('name')!r}: artifact {artifact.get('name')!r} is not a raw "
                "artifact; steps exchange object-store URLs, so only raw inputs are supported"
            )
        local = workdir / Path(artifact["path"]).name
        local.write_text(raw["data"])
        if artifact["path"] == input_ref:
            input_path = local
    if input_path is None:
        if input_ref == "-" or not Path(input_ref).is_file():
            raise WorkflowDefinitionError(
                f"template {template.get('name')!r}: --input {input_ref} is not one of its raw artifacts"
            )
        input_path = Path(input_ref)
    deadline = template.get("activeDeadlineSeconds")
    return StepCall(step, input_path, float(deadline) if deadline else None)


def execute(call: StepCall, mode: Mode, log: Path) -> str:
    """Run the step; returns what it printed on stdout (its output JSON), raises TaskFailedError."""
    if mode == "in-process":
        return _in_process(call, log)
    cmd = [
        sys.executable,
        "-m",
        "landstack.pipelines",
        "step",
        "run",
        call.step,
        "--input",
        str(call.input_path),
    ]
    with log.open("ab") as err:
        try:
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, timeout=call.timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise TaskFailedError(f"step {call.step} ran past its deadline of {call.timeout:.0f} s") from e
    if done.returncode != 0:
        tail = _tail(log)
        raise TaskFailedError(f"step {call.step} exited with {done.returncode}: {tail}", done.returncode)
    return done.stdout.decode().strip()


def _in_process(call: StepCall, log: Path) -> str:
    from landstack.pipelines.steps import run_step

    handler = logging.FileHandler(log)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stderr(io.StringIO()) as captured:
            output = run_step(call.step, json.loads(call.input_path.read_text()))
    except Exception as e:
        from landstack.pipelines.failures import classify

        code = (classify(e) or (1, ""))[0]
        raise TaskFailedError(f"step {call.step} failed: {e}", code) from e
    finally:
        root.removeHandler(handler)
        handler.close()
    with log.open("a") as f:
        f.write(captured.getvalue())
    return json.dumps(output)


def _tail(log: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        text = log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or f"no output; see {log}"
    return f"see {log}"
