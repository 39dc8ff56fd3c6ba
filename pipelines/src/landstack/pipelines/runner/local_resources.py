"""What the cluster's resource templates do, on one machine.

The training workflow's rollout patches a KServe InferenceService (a JSON patch naming the object in
`flags`): the `STORAGE_URI` of its container becomes the run's release folder
(``<registry>/releases/<name>/<release>/``, every member model in its own folder plus
``release.json``; a registry version folder ``<registry>/models/<name>/<version>/`` works too), with
canary traffic and the version as an annotation. On one machine there is no Kubernetes API; the
handler does what KServe would:

- the storage initializer: the folder is made local (a ``file://`` registry's folder is used in
  place; an ``s3://`` one is copied to ``<local_dir>/deployments/<name>/<version>/``);
- the wanted state is recorded in ``<local_dir>/deployments/<name>.json`` (with the history);
- the predictor: a local model-server process for that InferenceService (``isvc-<name>``, on a
  loopback port kept in the state) is restarted on the folder when it runs, or started when the
  handler is asked to serve.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from landstack.pipelines.runner.engine import ResourceHandler
from landstack.pipelines.runner.errors import TaskFailedError
from landstack.storage import layout

KIND = "inferenceservice"  # as the rollout names it in `flags` (kubectl's resource name)
STORAGE_URI_PATH = "/spec/predictor/containers/0/env/0/value"
CANARY_PATH = "/spec/predictor/canaryTrafficPercent"
ANNOTATIONS_PATH = "/metadata/annotations/"


def deployments_dir(local_dir: Path) -> Path:
    """Folder of the local deployments' wanted state."""
    return local_dir / "deployments"


def _pointer_key(escaped: str) -> str:
    """One JSON-pointer segment, unescaped (RFC 6901: ~1 is '/', ~0 is '~')."""
    return escaped.replace("~1", "/").replace("~0", "~")


def _read_patch(manifest: dict[str, Any], node: str) -> dict[str, Any]:
    """Storage URI, canary share and annotations the rollout's JSON patch sets."""
    ops = manifest.get("jsonPatch")
    if not isinstance(ops, list):
        raise TaskFailedError(
            f"{node}: the InferenceService patch must be a JSON patch (mergeStrategy: json) that "
            f"replaces {STORAGE_URI_PATH}",
            2,
        )
    wanted: dict[str, Any] = {"storage_uri": None, "canary_percent": None, "annotations": {}}
    for op in ops:
        path, value = str(op.get("path", "")), op.get("value")
        if op.get("op") not in ("add", "replace"):
            continue
        if path == STORAGE_URI_PATH:
            wanted["storage_uri"] = str(value)
        elif path == CANARY_PATH:
            wanted["canary_percent"] = int(value)
        elif path.startswith(ANNOTATIONS_PATH):
            wanted["annotations"][_pointer_key(path[len(ANNOTATIONS_PATH) :])] = str(value)
    if not wanted["storage_uri"]:
        raise TaskFailedError(f"{node}: the InferenceService patch sets no {STORAGE_URI_PATH}", 2)
    return wanted


def stage_version_folder(storage_uri: str, target: Path) -> Path:
    """What KServe's storage initializer does: the folder `storage_uri` as a local folder.

    The folder is a release (``release.json`` beside its members' folders) or one registry version
    (``model.pt``). ``file://`` folders are used in place; ``s3://`` folders are copied to `target`.
    """
    from landstack.pipelines.settings import get_settings
    from landstack.storage import ObjectStore, StoreError

    hint = (
        "; the rollout's storage URI must be a release folder <registry>/releases/<name>/<release>/ "
        "or a registry version folder <registry>/models/<name>/<version>/"
    )
    servable = {"model.pt", layout.RELEASE_MANIFEST}
    parsed = urlparse(storage_uri)
    if parsed.scheme == "file":
        folder = Path(unquote(parsed.path))
        if not any((folder / name).is_file() for name in servable):
            raise TaskFailedError(f"{storage_uri} holds no model.pt nor {layout.RELEASE_MANIFEST}{hint}", 2)
        return folder
    if parsed.scheme != "s3":
        raise TaskFailedError(f"storage URI {storage_uri!r} is neither file:// nor s3://{hint}", 2)
    try:
        store = ObjectStore(storage_uri.rstrip("/"), get_settings().s3())
        keys = store.list()
        if not servable & set(keys):
            raise TaskFailedError(f"{storage_uri} holds no model.pt nor {layout.RELEASE_MANIFEST}{hint}", 2)
        target.mkdir(parents=True, exist_ok=True)
        for key in keys:
            store.get_file(key, target / key)
    except StoreError as e:
        raise TaskFailedError(f"cannot copy {storage_uri}: {e}") from e
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(name: str, model_dir: Path, state: dict[str, Any], start: bool) -> str | None:
    """(Re)start the local predictor of InferenceService `name` on `model_dir`; its URL, or None."""
    from landstack.pipelines import local_services
    from landstack.pipelines.settings import get_settings

    port = int(state.get("port") or _free_port())
    service = local_services.ProcessService(
        f"isvc-{name}",
        [sys.executable, "-m", "landstack.model_server", f"--model_dir={model_dir}"],
        "127.0.0.1",
        port,
        get_settings(),
        env={
            "LANDSTACK_MODEL_SERVER_HTTP_PORT": str(port),
            "LANDSTACK_MODEL_SERVER_GRPC_PORT": str(_free_port()),
            "LANDSTACK_MODEL_SERVER_ENABLE_GRPC": "false",
        },
    )
    running = service.status().running
    if not (running or start):
        return None
    service.down()  # a new revision replaces the old one (no canary split on one machine)
    url = f"http://127.0.0.1:{port}"
    try:
        service.up(wait_seconds=180)
        local_services.wait_until_ready(
            f"{url}/v2/health/ready", 180, f"model server isvc-{name}", service.log
        )
    except local_services.ServiceError as e:
        raise TaskFailedError(f"the local predictor of {name} did not start on {model_dir}: {e}") from e
    state["port"] = port
    return url


def inference_service_patch(local_dir: Path, serve: bool = False) -> ResourceHandler:
    """A handler for the rollout's JSON patch of an InferenceService (see the module docstring).

    With `serve`, a local model server is started for the InferenceService when none runs yet;
    without, only a running one is restarted on the new version.
    """

    def handle(manifest: dict[str, Any], node: str) -> str:
        name = str(manifest["metadata"]["name"])
        if not name:
            raise TaskFailedError(f"{node}: the patch names no InferenceService (flags: [kind, name])", 2)
        wanted = _read_patch(manifest, node)
        path = deployments_dir(local_dir) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = (
            json.loads(path.read_text()) if path.exists() else {"name": name, "history": []}
        )
        uri = wanted["storage_uri"]
        version = uri.rstrip("/").rsplit("/", 1)[-1]
        model_dir = stage_version_folder(uri, deployments_dir(local_dir) / name / version)
        entry = {"node": node, **wanted, "model_dir": str(model_dir)}
        entry["url"] = _serve(name, model_dir, state, serve)
        state["history"].append(entry)
        state["current"] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)
        return json.dumps({"inference_service": name, **entry})

    return handle


def default_handlers(local_dir: Path, serve: bool = False) -> dict[str, ResourceHandler]:
    """The resource actions the local runner knows."""
    return {f"patch/{KIND}": inference_service_patch(local_dir, serve)}
