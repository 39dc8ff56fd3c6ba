"""Submitting a workflow: to Argo through the Argo Server API in the cluster, or to the local runner.

Every submission is recorded in the object store (`trigger/submissions/<time>-<name>.json`), so
what was submitted, when and why can be read back whichever backend ran it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from landstack.pipelines.errors import ConfigError, PipelineError
from landstack.pipelines.settings import Settings
from landstack.storage import ObjectStore
from landstack.storage.layout import TRIGGER

SUBMISSIONS = f"{TRIGGER}/submissions"


@dataclass(frozen=True)
class Submission:
    """A submitted workflow run."""

    workflow: str
    backend: str
    run: str
    record: str


def _argo(settings: Settings, workflow: str, parameters: dict[str, str]) -> str:
    from hera.shared import global_config
    from hera.workflows import Workflow, WorkflowsService
    from hera.workflows import models as m

    if not settings.argo_server_url:
        raise ConfigError("LANDSTACK_WORKFLOW_BACKEND=argo needs LANDSTACK_ARGO_SERVER_URL")
    token = settings.argo_token.get_secret_value() if settings.argo_token else None
    global_config.verify_ssl = settings.argo_verify_ssl
    service = WorkflowsService(
        host=settings.argo_server_url,
        token=token,
        namespace=settings.argo_namespace,
        verify_ssl=settings.argo_verify_ssl,
    )
    wf = Workflow(
        generate_name=f"{workflow}-",
        namespace=settings.argo_namespace,
        workflow_template_ref=m.WorkflowTemplateRef(name=workflow),
        arguments=[m.Parameter(name=k, value=v) for k, v in sorted(parameters.items())],
        workflows_service=service,
    )
    try:
        created = wf.create()
    except Exception as e:  # hera raises its own and requests' errors; all mean "not submitted"
        raise PipelineError(f"Argo Server at {settings.argo_server_url} refused {workflow}: {e}") from e
    return str(created.metadata.name)


def _local(settings: Settings, workflow: str, parameters: dict[str, str], stamp: str) -> str:
    from landstack.pipelines.runner.record import run_id

    rid = run_id(workflow, parameters, settings.store_url)
    if settings.workflow_local_start:
        logs = settings.local_dir / "runs"
        logs.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "landstack.pipelines", "workflow", "run", workflow]
        for k, v in sorted(parameters.items()):
            cmd += ["-p", f"{k}={v}"]
        with (logs / f"{rid}-{stamp}.log").open("ab") as log:
            subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    return rid


def submit(
    settings: Settings, store: ObjectStore, workflow: str, parameters: dict[str, Any], reason: list[str]
) -> Submission:
    """Submit `workflow` with `parameters` on the configured backend and record it."""
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in parameters.items()}
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    if settings.workflow_backend == "argo":
        run = _argo(settings, workflow, params)
    else:
        run = _local(settings, workflow, params, stamp)
    key = f"{SUBMISSIONS}/{stamp}-{workflow}.json"
    doc = {
        "workflow": workflow,
        "backend": settings.workflow_backend,
        "run": run,
        "parameters": params,
        "reason": reason,
        "submitted": now.isoformat(),
    }
    return Submission(workflow, settings.workflow_backend, run, store.put_json(key, doc))


def submissions(store: ObjectStore) -> list[dict[str, Any]]:
    """Every recorded submission, oldest first."""
    return [store.read_json(k) for k in store.list(SUBMISSIONS, suffix=".json")]
