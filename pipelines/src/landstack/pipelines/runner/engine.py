"""The local runner: rendered Argo workflows executed on one machine with Argo's semantics.

DAG order (`dependencies` / `depends`), workflow and template parameters, `withItems` /
`withParam` fan-out, task results (`tasks.X.outputs.result`, aggregated into a JSON list for a
fan-out), `when` conditions, retries with backoff, `activeDeadlineSeconds`, bounded parallelism
(a semaphore around step executions, so nested DAGs never deadlock a pool), a log per step and a
run record from which an interrupted run resumes. Scheduling at scale is Argo's job.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from landstack.pipelines.runner.errors import TaskFailedError, WorkflowDefinitionError, WorkflowError
from landstack.pipelines.runner.executors import Mode, execute, resolve_call
from landstack.pipelines.runner.expressions import evaluate_when, substitute, substitute_all
from landstack.pipelines.runner.record import RunRecord, run_id

_log = logging.getLogger(__name__)
_DEPENDS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?=\.|\s|\)|$)")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")

ResourceHandler = Callable[[dict[str, Any], str], str]


@dataclass
class RunOptions:
    """How the local runner executes a workflow."""

    runs_dir: Path
    parallelism: int = 2
    mode: Mode = "subprocess"
    backoff_scale: float = 1.0  # 0 in tests: retry at once
    resource_handlers: dict[str, ResourceHandler] = field(default_factory=dict)  # keyed "action/Kind"
    on_node: Callable[[str, str], None] | None = None  # progress callback (node, phase)
    context: str = ""  # what else makes a run the same run, e.g. the object store URL


@dataclass
class Outputs:
    """What a node produced: its stdout result (JSON text) and nothing else."""

    result: str | None = None
    phase: str = "Succeeded"


@dataclass
class RunResult:
    """A finished run."""

    run_id: str
    folder: Path
    phase: str
    outputs: Outputs
    resumed: bool
    nodes: dict[str, Any]


def _spec(manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest.get("kind") == "CronWorkflow":
        return dict(manifest["spec"]["workflowSpec"])
    return dict(manifest["spec"])


def _duration(text: Any) -> float:
    m = _DURATION.match(str(text).strip())
    if not m:
        raise WorkflowDefinitionError(f"duration {text!r}: use e.g. 10s, 2m, 1h")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


class LocalRunner:
    """Runs one rendered workflow manifest (Workflow, WorkflowTemplate or CronWorkflow)."""

    def __init__(self, manifest: dict[str, Any], options: RunOptions) -> None:
        self.manifest = manifest
        self.name = str(manifest["metadata"].get("name") or manifest["metadata"].get("generateName", "run"))
        self.spec = _spec(manifest)
        self.templates = {t["name"]: t for t in self.spec.get("templates", [])}
        self.options = options
        self._slots = threading.Semaphore(max(1, options.parallelism))

    def parameters(self, given: dict[str, str]) -> dict[str, str]:
        """Workflow parameters: the manifest's defaults overridden by `given`; unknown names refused."""
        declared = {p["name"]: p for p in (self.spec.get("arguments") or {}).get("parameters", [])}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise WorkflowDefinitionError(
                f"workflow {self.name!r} has no parameter {', '.join(unknown)}; "
                f"it takes {', '.join(declared)}"
            )
        values = {}
        for name, p in declared.items():
            if name in given:
                values[name] = str(given[name])
            elif "value" in p:
                values[name] = str(p["value"])
            else:
                raise WorkflowDefinitionError(
                    f"workflow {self.name!r} needs the parameter {name} (-p {name}=...)"
                )
        return values

    def run(self, given: dict[str, str] | None = None) -> RunResult:
        """Run (or resume) the workflow; raises WorkflowError when a task failed."""
        params = self.parameters(given or {})
        rid = run_id(self.name, params, self.options.context)
        record = RunRecord(self.options.runs_dir / rid, self.name, params)
        scope = {f"workflow.parameters.{k}": v for k, v in params.items()}
        scope["workflow.name"] = rid
        deadline = self.spec.get("activeDeadlineSeconds")
        self._deadline = time.monotonic() + float(deadline) if deadline else None
        try:
            outputs = self._template(self.spec["entrypoint"], {}, scope, "", record)
        except WorkflowError as e:
            record.finish("Failed", str(e))
            raise
        record.finish("Succeeded")
        return RunResult(rid, record.folder, "Succeeded", outputs, record.resumed, record.doc["nodes"])

    # templates -------------------------------------------------------------------------------

    def _template(
        self, name: str, args: dict[str, str], wf_scope: dict[str, Any], node: str, record: RunRecord
    ) -> Outputs:
        template = self.templates.get(name)
        if template is None:
            raise WorkflowDefinitionError(f"workflow {self.name!r} has no template {name!r}")
        scope = dict(wf_scope)
        for p in (template.get("inputs") or {}).get("parameters", []):
            if p["name"] in args:
                scope[f"inputs.parameters.{p['name']}"] = args[p["name"]]
            elif "value" in p:
                scope[f"inputs.parameters.{p['name']}"] = substitute(str(p["value"]), scope)
            else:
                raise WorkflowDefinitionError(f"template {name!r} needs the input parameter {p['name']!r}")
        path = f"{node}/{name}" if node else name
        if "dag" in template:
            return self._dag(template, scope, path, record)
        if "container" in template:
            return self._leaf(template, scope, path, record, self._container)
        if "resource" in template:
            return self._leaf(template, scope, path, record, self._resource)
        raise WorkflowDefinitionError(
            f"template {name!r}: the local runner runs dag, container and resource templates"
        )

    def _leaf(
        self,
        template: dict[str, Any],
        scope: dict[str, Any],
        node: str,
        record: RunRecord,
        run: Callable[[dict[str, Any], str, RunRecord], str],
    ) -> Outputs:
        done = record.succeeded(node)
        if done is not None:
            return Outputs(done.get("result"))
        resolved = substitute_all({k: v for k, v in template.items() if k != "outputs"}, scope)
        strategy = template.get("retryStrategy") or {}
        attempts = int(strategy.get("limit", 0)) + 1
        backoff = strategy.get("backoff") or {}
        delay = _duration(backoff.get("duration", "1s")) * self.options.backoff_scale
        factor = float(backoff.get("factor", 2))
        cap = _duration(backoff["maxDuration"]) if "maxDuration" in backoff else None
        for attempt in range(1, attempts + 1):
            self._check_deadline(node)
            self._notify(node, "Running")
            record.set(node, "Running", attempts=attempt)
            try:
                with self._slots:
                    result = run(resolved, node, record)
            except TaskFailedError as e:
                _log.warning("%s failed (attempt %d of %d): %s", node, attempt, attempts, e)
                if attempt == attempts or not _retry_allowed(strategy, e.exit_code):
                    record.set(node, "Failed", attempts=attempt, message=str(e))
                    self._notify(node, "Failed")
                    raise TaskFailedError(
                        f"{node} failed after {attempt} attempt(s): {e}", e.exit_code
                    ) from e
                time.sleep(min(delay, cap) if cap is not None else delay)
                delay *= factor
                continue
            record.set(node, "Succeeded", attempts=attempt, result=result)
            self._notify(node, "Succeeded")
            return Outputs(result)
        raise AssertionError("unreachable")

    def _container(self, template: dict[str, Any], node: str, record: RunRecord) -> str:
        call = resolve_call(template, record.folder / "inputs" / record.log_path(node).stem)
        return execute(call, self.options.mode, record.log_path(node))

    def _resource(self, template: dict[str, Any], node: str, record: RunRecord) -> str:
        res = template["resource"]
        import yaml

        manifest = yaml.safe_load(res.get("manifest", "")) or {}
        if isinstance(manifest, list):
            # a JSON patch (mergeStrategy: json): Argo names the object in `flags` (kind, name)
            kind, name = ([str(f) for f in res.get("flags") or []] + ["", ""])[:2]
            manifest = {"kind": kind, "metadata": {"name": name}, "jsonPatch": manifest}
        key = f"{res.get('action')}/{manifest.get('kind')}"
        handler = self.options.resource_handlers.get(key)
        if handler is None:
            raise WorkflowDefinitionError(
                f"{node}: no local handler for resource action {key!r}; known: "
                f"{', '.join(self.options.resource_handlers) or 'none'}"
            )
        return handler(manifest, node)

    # DAGs ------------------------------------------------------------------------------------

    def _dag(self, template: dict[str, Any], scope: dict[str, Any], node: str, record: RunRecord) -> Outputs:
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        graph = {name: _dependencies(t, tasks) for name, t in tasks.items()}
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        results: dict[str, Outputs] = {}
        failures: list[str] = []
        lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=max(4, len(tasks))) as pool:
            running: dict[str, Any] = {}
            while sorter.is_active():
                for name in sorter.get_ready():
                    deps_failed = any(results[d].phase in ("Failed", "Omitted") for d in graph[name])
                    if deps_failed or failures:
                        results[name] = Outputs(phase="Omitted")
                        sorter.done(name)
                        continue
                    with lock:
                        task_scope = {**scope, **_task_outputs(results)}
                    running[name] = pool.submit(self._task, tasks[name], task_scope, node, record)
                if not running:
                    continue
                finished = next(iter(_wait_any(running)))
                future = running.pop(finished)
                try:
                    results[finished] = future.result()
                except WorkflowError as e:
                    results[finished] = Outputs(phase="Failed")
                    failures.append(str(e))
                sorter.done(finished)
        if failures:
            raise TaskFailedError("; ".join(failures))
        return Outputs(None)

    def _task(self, task: dict[str, Any], scope: dict[str, Any], dag_node: str, record: RunRecord) -> Outputs:
        node = f"{dag_node}/{task['name']}"
        when = task.get("when")
        if when and "item" not in when and not evaluate_when(substitute(when, scope)):
            # a condition that does not depend on the item skips the whole fan-out, unexpanded
            record.set(node, "Skipped", message=f"when {when!r} was false")
            self._notify(node, "Skipped")
            return Outputs(phase="Skipped")
        items = _items(task, scope)
        if items is None:
            return self._one(task, scope, node, record)
        children: list[Outputs] = []
        with ThreadPoolExecutor(max_workers=max(1, min(len(items), 32))) as pool:
            futures = [
                pool.submit(self._one, task, {**scope, "item": item}, f"{node}({i}:{_label(item)})", record)
                for i, item in enumerate(items)
            ]
            errors = []
            for f in futures:
                try:
                    children.append(f.result())
                except WorkflowError as e:
                    errors.append(str(e))
        if errors:
            raise TaskFailedError("; ".join(errors))
        results = [_parsed(c.result) for c in children if c.phase == "Succeeded"]
        return Outputs(json.dumps(results))

    def _one(self, task: dict[str, Any], scope: dict[str, Any], node: str, record: RunRecord) -> Outputs:
        when = task.get("when")
        if when and not evaluate_when(substitute(when, scope)):
            record.set(node, "Skipped", message=f"when {when!r} was false")
            self._notify(node, "Skipped")
            return Outputs(phase="Skipped")
        args = {p["name"]: substitute(str(p.get("value", "")), scope) for p in _arg_params(task)}
        wf_scope = {k: v for k, v in scope.items() if k.startswith("workflow.")}
        return self._template(task["template"], args, wf_scope, node, record)

    def _check_deadline(self, node: str) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TaskFailedError(f"{node}: the workflow ran past its activeDeadlineSeconds")

    def _notify(self, node: str, phase: str) -> None:
        if self.options.on_node:
            self.options.on_node(node, phase)


def _retry_allowed(strategy: dict[str, Any], exit_code: int) -> bool:
    """Argo's `retryStrategy.expression` over `lastRetry.exitCode` (the part the workflows use)."""
    expression = strategy.get("expression")
    if not expression:
        return True
    text = re.sub(r"asInt\(\s*lastRetry\.exitCode\s*\)|lastRetry\.exitCode", str(exit_code), expression)
    return evaluate_when(text)


def _arg_params(task: dict[str, Any]) -> list[dict[str, Any]]:
    return list((task.get("arguments") or {}).get("parameters", []))


def _dependencies(task: dict[str, Any], tasks: dict[str, Any]) -> set[str]:
    deps = set(task.get("dependencies") or [])
    if task.get("depends"):
        deps |= {n for n in _DEPENDS_NAME.findall(task["depends"]) if n in tasks}
    unknown = deps - set(tasks)
    if unknown:
        raise WorkflowDefinitionError(f"task {task['name']!r} depends on unknown task(s) {sorted(unknown)}")
    return deps


def _items(task: dict[str, Any], scope: dict[str, Any]) -> list[Any] | None:
    if "withItems" in task:
        return list(task["withItems"])
    if "withParam" in task:
        text = substitute(str(task["withParam"]), scope)
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise WorkflowDefinitionError(
                f"task {task['name']!r}: withParam is not a JSON list: {text!r}"
            ) from e
        if not isinstance(items, list):
            raise WorkflowDefinitionError(f"task {task['name']!r}: withParam is not a JSON list: {text!r}")
        return items
    return None


def _task_outputs(results: dict[str, Outputs]) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    for name, out in results.items():
        scope[f"tasks.{name}.status"] = out.phase
        if out.result is not None:
            scope[f"tasks.{name}.outputs.result"] = out.result
    return scope


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _label(item: Any) -> str:
    text = item if isinstance(item, str) else json.dumps(item, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _wait_any(running: dict[str, Any]) -> list[str]:
    from concurrent.futures import FIRST_COMPLETED, wait

    done, _ = wait(list(running.values()), return_when=FIRST_COMPLETED)
    return [name for name, f in running.items() if f in done]
