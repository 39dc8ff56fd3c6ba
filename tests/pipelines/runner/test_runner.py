"""The local runner executes rendered Argo manifests with Argo's semantics (in-process steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from landstack.pipelines.runner import LocalRunner, RunOptions, TaskFailedError, WorkflowDefinitionError
from landstack.pipelines.runner.expressions import evaluate_when, jsonpath, substitute
from landstack.pipelines.steps import StepInput, StepOutput, step
from landstack.storage import ObjectStore

CALLS: list[tuple[str, Any]] = []


class _EchoIn(StepInput):
    value: Any = None
    count: int = 0


class _EchoOut(StepOutput):
    value: Any = None
    items: list[Any] = Field(default_factory=list)


@step("test-echo", _EchoIn, _EchoOut, cached=False)
def _echo(inp: _EchoIn) -> _EchoOut:
    """Echo the value; with count, also a list of that many items."""
    CALLS.append(("test-echo", inp.value))
    return _EchoOut(value=inp.value, items=[f"t{i}" for i in range(inp.count)])


class _FlakyIn(StepInput):
    marker: str
    failures: int


@step("test-flaky", _FlakyIn, _EchoOut, cached=False)
def _flaky(inp: _FlakyIn) -> _EchoOut:
    """Fail `failures` times (counted in a marker file), then succeed."""
    marker = Path(inp.marker)
    seen = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(seen + 1))
    CALLS.append(("test-flaky", seen))
    if seen < inp.failures:
        raise RuntimeError(f"planned failure {seen + 1}")
    return _EchoOut(value=seen)


def _container(name: str, step_name: str, retry: int = 0) -> dict[str, Any]:
    path = "/var/run/landstack/input.json"
    t: dict[str, Any] = {
        "name": name,
        "inputs": {
            "parameters": [{"name": "input"}],
            "artifacts": [
                {"name": "input-json", "path": path, "raw": {"data": "{{inputs.parameters.input}}"}}
            ],
        },
        "container": {
            "image": "x",
            "command": ["landstack"],
            "args": ["step", "run", step_name, "--input", path],
        },
    }
    if retry:
        t["retryStrategy"] = {"limit": str(retry), "backoff": {"duration": "1s", "factor": "2"}}
    return t


def _manifest(
    tasks: list[dict[str, Any]], extra: list[dict[str, Any]] | None = None, **params: str
) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "test-wf"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.items()]},
            "templates": [
                _container("echo", "test-echo"),
                _container("flaky", "test-flaky", retry=2),
                *(extra or []),
                {"name": "main", "dag": {"tasks": tasks}},
            ],
        },
    }


def _task(name: str, template: str, payload: str, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "template": template,
        "arguments": {"parameters": [{"name": "input", "value": payload}]},
        **more,
    }


@pytest.fixture(autouse=True)
def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("LANDSTACK_STORE_URL", (tmp_path / "store").as_uri())
    from landstack.pipelines.settings import get_settings

    get_settings.cache_clear()
    CALLS.clear()
    return ObjectStore((tmp_path / "store").as_uri())


def _runner(manifest: dict[str, Any], tmp_path: Path, **opts: Any) -> LocalRunner:
    return LocalRunner(
        manifest, RunOptions(runs_dir=tmp_path / "runs", mode="in-process", backoff_scale=0, **opts)
    )


def test_expressions() -> None:
    scope = {
        "tasks.a-b.outputs.result": '{"x": {"y": [1, 2]}}',
        "workflow.parameters.n": "3",
        "item": {"k": "v"},
    }
    assert substitute("{{=jsonpath(tasks['a-b'].outputs.result, '$.x.y')}}", scope) == "[1, 2]"
    assert substitute("{{=jsonpath(tasks.a-b.outputs.result, '$.x.y[1]')}}", scope) == "2"
    assert substitute("n={{workflow.parameters.n}} k={{item.k}}", scope) == "n=3 k=v"
    assert jsonpath({"a": [{"b": 1}]}, "$.a[0].b") == 1
    assert evaluate_when("true == true") and not evaluate_when("false == true")
    assert evaluate_when("3 > 2 && (a == a || !true)") and not evaluate_when("!true")
    with pytest.raises(WorkflowDefinitionError, match="cannot be resolved"):
        substitute("{{tasks.missing.outputs.result}}", scope)


def test_dag_order_fanout_outputs_and_when(tmp_path: Path) -> None:
    tasks = [
        _task("first", "echo", '{"value": "{{workflow.parameters.word}}", "count": 3}'),
        _task(
            "each",
            "echo",
            '{"value": "{{item}}"}',
            depends="first",
            withParam="{{=jsonpath(tasks.first.outputs.result, '$.items')}}",
        ),
        _task("listed", "echo", '{"value": {{tasks.each.outputs.result}}}', depends="each"),
        _task(
            "skipped",
            "echo",
            '{"value": "never"}',
            depends="first",
            when="{{workflow.parameters.word}} == other",
        ),
        _task("literal", "echo", '{"value": "{{item}}"}', withItems=["a", "b"]),
    ]
    result = _runner(_manifest(tasks, word="hello"), tmp_path).run()
    assert result.phase == "Succeeded"
    values = [v for s, v in CALLS if s == "test-echo"]
    assert values[0] in ("hello", "a", "b")
    assert sorted(v for v in values if isinstance(v, str) and v.startswith("t")) == ["t0", "t1", "t2"]
    listed = [v for v in values if isinstance(v, list)]
    assert len(listed) == 1 and sorted(o["value"] for o in listed[0]) == ["t0", "t1", "t2"]
    assert "never" not in values
    skipped = [n for n, e in result.nodes.items() if n.endswith("/skipped") and e["phase"] == "Skipped"]
    assert skipped, result.nodes
    # first ran before every fan-out child
    assert values.index("hello") < min(values.index(f"t{i}") for i in range(3))


def test_parameters_override_and_refuse_unknown(tmp_path: Path) -> None:
    manifest = _manifest([_task("only", "echo", '{"value": "{{workflow.parameters.word}}"}')], word="a")
    _runner(manifest, tmp_path).run({"word": "b"})
    assert CALLS == [("test-echo", "b")]
    with pytest.raises(WorkflowDefinitionError, match="has no parameter colour"):
        _runner(manifest, tmp_path).run({"colour": "x"})


def test_retries_then_success_and_failure_after_limit(tmp_path: Path) -> None:
    ok = _manifest([_task("f", "flaky", f'{{"marker": "{tmp_path / "m1"}", "failures": 2}}')])
    result = _runner(ok, tmp_path).run()
    assert result.phase == "Succeeded"
    assert [v for s, v in CALLS if s == "test-flaky"] == [0, 1, 2]
    bad = _manifest(
        [
            _task("f", "flaky", f'{{"marker": "{tmp_path / "m2"}", "failures": 5}}'),
            _task("after", "echo", '{"value": "after"}', depends="f"),
        ]
    )
    with pytest.raises(TaskFailedError, match="after 3 attempt"):
        _runner(bad, tmp_path).run()
    assert ("test-echo", "after") not in CALLS
    record = json.loads(next((tmp_path / "runs").glob("test-wf-*/record.json")).read_text())
    assert record["phase"] == "Failed"


def test_resume_skips_succeeded_nodes(tmp_path: Path) -> None:
    marker = tmp_path / "m"
    manifest = _manifest(
        [
            _task("a", "echo", '{"value": "a"}'),
            _task("f", "flaky", f'{{"marker": "{marker}", "failures": 3}}', depends="a"),
        ]
    )
    with pytest.raises(TaskFailedError):
        _runner(manifest, tmp_path).run()
    CALLS.clear()
    result = _runner(manifest, tmp_path).run()  # the 4th attempt succeeds; "a" is not run again
    assert result.resumed
    assert ("test-echo", "a") not in CALLS and ("test-flaky", 3) in CALLS


def test_unsupported_container_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(
        [_task("x", "raw", "{}")],
        extra=[
            {
                "name": "raw",
                "inputs": {"parameters": [{"name": "input"}]},
                "container": {"image": "x", "command": ["sh", "-c", "true"]},
            }
        ],
    )
    with pytest.raises(TaskFailedError, match="runs only `landstack step run"):
        _runner(manifest, tmp_path).run()


def test_resource_template_goes_to_its_handler(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def handler(manifest: dict[str, Any], node: str) -> str:
        seen.append(manifest)
        return json.dumps({"patched": manifest["metadata"]["name"]})

    resource = {
        "name": "patch",
        "inputs": {"parameters": [{"name": "v"}]},
        "resource": {
            "action": "patch",
            "manifest": "kind: InferenceService\nmetadata:\n  name: m-{{inputs.parameters.v}}\n",
        },
    }
    task = {"name": "p", "template": "patch", "arguments": {"parameters": [{"name": "v", "value": "7"}]}}
    runner = _runner(
        _manifest([task], extra=[resource]), tmp_path, resource_handlers={"patch/InferenceService": handler}
    )
    runner.run()
    assert seen == [{"kind": "InferenceService", "metadata": {"name": "m-7"}}]
