"""The training workflow's release and rollout templates (a JSON patch of the InferenceService's
STORAGE_URI) on the local runner: the folder is staged as KServe's storage initializer would, the
wanted state is recorded, and a local model server for the InferenceService serves the new version
and is restarted on the next one. With production units, the release step gathers every unit's
model and the fallback into one release folder and the one server answers each of them by name.

The templates and the tasks calling them are taken from the committed landstack-training.yaml and
run in a small DAG with the workflow parameters the training workflow passes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from landstack.pipelines import local_services, workflows
from landstack.pipelines.runner import LocalRunner, RunOptions, TaskFailedError
from landstack.pipelines.runner.local_resources import default_handlers, deployments_dir
from landstack.pipelines.settings import get_settings

pytestmark = pytest.mark.integration


def _workflow(
    name: str, registry: str, tasks: list[dict[str, Any]], isvc: str = "landstack-tempcnn"
) -> dict[str, Any]:
    """A workflow running `tasks` with the committed training templates they call."""
    training = workflows.load("landstack-training")
    called = {t["template"] for t in tasks}
    templates = [t for t in training["spec"]["templates"] if t["name"] in called]
    params = {
        "registry-url": registry,
        "model-name": "tempcnn",
        "inference-service": isvc,
        "canary-percent": "10",
        "image": "unused",
        "config-map": "unused",
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.items()]},
            "templates": [*templates, {"name": "main", "dag": {"tasks": tasks}}],
        },
    }


def _rollout_workflow(registry: str, version: str, isvc: str = "landstack-tempcnn") -> dict[str, Any]:
    """The rollout alone, pointed at a registry version folder (what the chart's values name)."""
    task = {
        "name": "rollout",
        "template": "rollout",
        "arguments": {
            "parameters": [
                {"name": "storage-uri", "value": f"{registry}/models/tempcnn/{version}/"},
                {"name": "version", "value": version},
            ]
        },
    }
    return _workflow(f"rollout-{version}", registry, [task], isvc)


def _release_workflow(registry: str, registered: list[dict[str, str]]) -> dict[str, Any]:
    """The committed `release` → `rollout` tasks, the register step's aggregated result given."""
    training = workflows.load("landstack-training")
    main = next(t for t in training["spec"]["templates"] if t["name"] == "main")
    tasks = {t["name"]: t for t in main["dag"]["tasks"]}
    release, rollout = dict(tasks["release"]), dict(tasks["rollout"])
    for t in (release, rollout):
        t.pop("when")  # the accuracy gate passed
    release.pop("depends")  # on register, whose aggregated result is given here
    (inp,) = release["arguments"]["parameters"]
    inp["value"] = inp["value"].replace("{{tasks.register.outputs.result}}", json.dumps(registered))
    return _workflow("release-rollout", registry, [release, rollout])


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LANDSTACK_STORE_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("LANDSTACK_LOCAL_DIR", str(tmp_path / "local"))
    get_settings.cache_clear()
    yield tmp_path / "local"
    local_services.ProcessService("isvc-landstack-tempcnn", [], "127.0.0.1", 0, get_settings()).down()
    get_settings.cache_clear()


def _run(workflow: dict[str, Any], local_dir: Path, tmp_path: Path, serve: bool) -> dict[str, Any]:
    options = RunOptions(
        runs_dir=tmp_path / "runs",
        mode="in-process",
        backoff_scale=0,
        resource_handlers=default_handlers(local_dir, serve=serve),
    )
    result = LocalRunner(workflow, options).run()
    node = next(e for n, e in result.nodes.items() if n.endswith("/rollout"))
    return dict(json.loads(node["result"]))


def _register(store: Path, register: Callable[[Path, str], dict[str, Any]], version: str) -> None:
    from landstack.models.registry import load_registered, register_model

    register(store, "tempcnn")
    module, meta = load_registered(store.as_uri(), "tempcnn")
    register_model(store.as_uri(), module, {**meta, "version": version})


def test_rollout_serves_the_new_version_and_restarts_on_the_next(
    local: Path, tmp_path: Path, register_tiny_tempcnn: Callable[[Path, str], dict[str, Any]]
) -> None:
    store = tmp_path / "store"
    _register(store, register_tiny_tempcnn, "0.0.2")
    first = _run(_rollout_workflow(store.as_uri(), "0.0.1"), local, tmp_path, serve=True)
    assert first["inference_service"] == "landstack-tempcnn"
    assert first["storage_uri"] == f"{store.as_uri()}/models/tempcnn/0.0.1/"
    assert first["model_dir"] == str(store / "models" / "tempcnn" / "0.0.1")
    assert first["canary_percent"] == 10
    assert first["annotations"] == {"landstack.io/model-version": "0.0.1"}
    described = httpx.get(f"{first['url']}/v2/models/tempcnn", timeout=10).json()
    assert described["versions"] == ["0.0.1"]

    # the next rollout restarts the running predictor on the new folder (serving not asked again)
    second = _run(_rollout_workflow(store.as_uri(), "0.0.2"), local, tmp_path / "again", serve=False)
    assert second["url"] == first["url"]
    assert httpx.get(f"{second['url']}/v2/models/tempcnn", timeout=10).json()["versions"] == ["0.0.2"]
    state = json.loads((deployments_dir(local) / "landstack-tempcnn.json").read_text())
    assert [h["storage_uri"].rsplit("/", 2)[-2] for h in state["history"]] == ["0.0.1", "0.0.2"]
    assert state["current"]["model_dir"].endswith("/0.0.2")


def test_rollout_to_a_missing_version_fails_as_bad_input(
    local: Path, tmp_path: Path, register_tiny_tempcnn: Callable[[Path, str], dict[str, Any]]
) -> None:
    register_tiny_tempcnn(tmp_path / "store", "tempcnn")
    # bad input (exit code 2): not retried
    with pytest.raises(TaskFailedError, match=r"after 1 attempt.*models/tempcnn/9\.9\.9/ holds no model\.pt"):
        _run(_rollout_workflow((tmp_path / "store").as_uri(), "9.9.9"), local, tmp_path, serve=False)
    assert not (deployments_dir(local) / "landstack-tempcnn.json").exists()


def test_an_s3_version_folder_is_copied_like_the_storage_initializer_does(
    local: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import uuid

    import s3fs

    from landstack.model_server.settings import ModelServerSettings
    from landstack.model_server.sources import model_refs
    from landstack.models.registry import register_model
    from landstack.pipelines.runner.local_resources import stage_version_folder
    from landstack.storage import S3Options

    endpoint = "http://127.0.0.1:55900"
    try:
        socket.create_connection(("127.0.0.1", 55900), timeout=1).close()
    except OSError as e:
        pytest.skip(f"moto S3 at {endpoint} is not reachable ({e}); start it with `landstack services up`")
    bucket = f"rollout-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing").mkdir(bucket)
    for key, value in (
        ("ENDPOINT_URL", endpoint),
        ("ACCESS_KEY_ID", "testing"),
        ("SECRET_ACCESS_KEY", "testing"),
    ):
        monkeypatch.setenv(f"LANDSTACK_S3_{key}", value)
    get_settings.cache_clear()
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "services" / "model_server"))
    import tiny_models as tm  # the model server tests' tiny models

    model, meta = tm.build(tm.TEMPCNN)
    s3 = S3Options(endpoint_url=endpoint, access_key_id="testing", secret_access_key="testing")
    register_model(f"s3://{bucket}/registry", model, meta, s3=s3)
    uri = f"s3://{bucket}/registry/models/{tm.TEMPCNN}/{meta['version']}/"
    folder = stage_version_folder(uri, tmp_path / "mnt" / "models")
    assert folder == tmp_path / "mnt" / "models"
    assert {"model.pt", "item.json"} <= {p.name for p in folder.iterdir()}
    assert model_refs(ModelServerSettings(model_dir=str(folder)))[0].name == tm.TEMPCNN

    # a release folder on S3 is copied whole: the manifest and every member's folder
    from landstack.models.releases import Member, register_release

    rel = register_release(f"s3://{bucket}/registry", "tempcnn", [Member(tm.TEMPCNN, meta["version"])], s3)
    assert rel.url == f"s3://{bucket}/registry/releases/tempcnn/{rel.version}/"
    staged = stage_version_folder(rel.url, tmp_path / "mnt" / "release")
    refs = model_refs(ModelServerSettings(model_dir=str(staged)))
    assert [(r.name, r.version, r.folder) for r in refs] == [
        (tm.TEMPCNN, meta["version"], str(staged / tm.TEMPCNN))
    ]


def test_release_of_every_unit_is_rolled_out_to_one_server(
    local: Path, tmp_path: Path, register_tiny_tempcnn: Callable[[Path, str], dict[str, Any]]
) -> None:
    store = tmp_path / "store"
    names = ["tempcnn-r1c1", "tempcnn-r1c2", "tempcnn-fallback"]
    registered = [
        {"name": n, "version": register_tiny_tempcnn(store, n)["version"], "item_url": "", "model_url": ""}
        for n in names
    ]
    result = LocalRunner(
        _release_workflow(store.as_uri(), registered),
        RunOptions(
            runs_dir=tmp_path / "runs",
            mode="in-process",
            backoff_scale=0,
            resource_handlers=default_handlers(local, serve=True),
        ),
    ).run()
    release = json.loads(next(e["result"] for n, e in result.nodes.items() if n.endswith("/release")))
    rollout = json.loads(next(e["result"] for n, e in result.nodes.items() if n.endswith("/rollout")))
    folder = store / "releases" / "tempcnn" / release["version"]
    assert release["storage_uri"] == f"{folder.as_uri()}/"
    assert release["members"] == [f"{n}:0.0.1" for n in names]
    assert rollout["storage_uri"] == release["storage_uri"]
    assert rollout["model_dir"] == str(folder)
    assert rollout["annotations"] == {"landstack.io/model-version": release["version"]}
    assert json.loads((folder / "release.json").read_text())["members"] == [
        {"name": n, "version": "0.0.1"} for n in names
    ]
    # one local predictor answers every unit's model and the fallback by name
    listed = httpx.get(f"{rollout['url']}/v2/models", timeout=10).json()["models"]
    assert sorted(listed) == sorted(names)
    for n in names:
        assert httpx.get(f"{rollout['url']}/v2/models/{n}", timeout=10).json()["versions"] == ["0.0.1"]
    state = json.loads((deployments_dir(local) / "landstack-tempcnn.json").read_text())
    assert state["current"]["storage_uri"] == release["storage_uri"]
