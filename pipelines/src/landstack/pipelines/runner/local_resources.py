"""What the cluster's resource templates do, on one machine.

The training workflow's rollout patches a KServe InferenceService to the new model version. On
one machine there is no Kubernetes API: the patch is recorded as the wanted state of a local
model server (`<local_dir>/deployments/<name>.json`), which `landstack services` reads when it
starts the model servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from landstack.pipelines.runner.engine import ResourceHandler


def deployments_dir(local_dir: Path) -> Path:
    """Folder of the local deployments' wanted state."""
    return local_dir / "deployments"


def inference_service_patch(local_dir: Path) -> ResourceHandler:
    """A handler for `patch` of an InferenceService: merges the patch into the local wanted state."""

    def handle(manifest: dict[str, Any], node: str) -> str:
        name = str(manifest["metadata"]["name"])
        path = deployments_dir(local_dir) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = (
            json.loads(path.read_text()) if path.exists() else {"name": name, "history": []}
        )
        predictor = (manifest.get("spec") or {}).get("predictor") or {}
        entry = {
            "node": node,
            "storage_uri": (predictor.get("model") or {}).get("storageUri"),
            "canary_percent": predictor.get("canaryTrafficPercent"),
            "annotations": (manifest["metadata"].get("annotations") or {}),
        }
        state["history"].append(entry)
        state["current"] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)
        return json.dumps({"inference_service": name, **entry})

    return handle


def default_handlers(local_dir: Path) -> dict[str, ResourceHandler]:
    """The resource actions the local runner knows."""
    return {"patch/InferenceService": inference_service_patch(local_dir)}
