"""What every landstack workflow template shares: one container shape that runs one step.

Each template runs `landstack step run NAME --input /var/run/landstack/input.json` in the pipeline
image, its input JSON delivered as a raw artifact built from the template's `input` parameter;
the step prints its output JSON on stdout, which Argo keeps as `outputs.result`. The pods run as
non-root on a read-only root filesystem with `/tmp` on an emptyDir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hera.workflows import Container, Parameter, RawArtifact, Resource, RetryStrategy, Task
from hera.workflows import models as m

INPUT_PATH = "/var/run/landstack/input.json"
IMAGE_PARAM = "{{workflow.parameters.image}}"
DEFAULT_IMAGE = "landstack/pipeline:0.1.0"
SERVICE_ACCOUNT = "landstack-workflows"


@dataclass(frozen=True)
class Raw:
    """A value inserted into a step's input JSON without quoting (a JSON parameter or expression)."""

    text: str


def payload(**fields: Any) -> str:
    """A step's input JSON with `{{...}}` placeholders; `Raw` values go in unquoted."""
    parts = []
    for key, value in fields.items():
        text = value.text if isinstance(value, Raw) else json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def param(name: str) -> str:
    """A workflow parameter reference."""
    return f"{{{{workflow.parameters.{name}}}}}"


def retries(limit: int = 3) -> RetryStrategy:
    """Retry with exponential backoff (steps are idempotent, so a retry is safe), but never bad input:
    `landstack step run` exits 2 for that, and a retry would fail the same way."""
    return RetryStrategy(
        limit=str(limit),  # the Argo schema types IntOrString as a string
        retry_policy="Always",
        expression="asInt(lastRetry.exitCode) != 2",
        backoff=m.Backoff(duration="15s", factor="2", max_duration="10m"),
    )


def step_template(
    name: str,
    step: str,
    *,
    cpu: str = "1",
    memory: str = "2Gi",
    deadline_s: int = 3600,
    retry_limit: int = 3,
    pod_spec_patch: str | None = None,
) -> Container:
    """A container template running one landstack step on its `input` parameter."""
    return Container(
        name=name,
        image=IMAGE_PARAM,
        command=["landstack"],
        args=["step", "run", step, "--input", INPUT_PATH],
        inputs=[
            Parameter(name="input"),
            RawArtifact(name="input-json", path=INPUT_PATH, data="{{inputs.parameters.input}}"),
        ],
        resources=m.ResourceRequirements(
            requests={"cpu": cpu, "memory": memory}, limits={"cpu": cpu, "memory": memory}
        ),
        security_context=m.SecurityContext(
            run_as_non_root=True,
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            capabilities=m.Capabilities(drop=["ALL"]),
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],
        env_from=[
            m.EnvFromSource(config_map_ref=m.ConfigMapEnvSource(name="{{workflow.parameters.config-map}}"))
        ],
        active_deadline_seconds=str(deadline_s),  # IntOrString: the Argo schema types it as a string
        retry_strategy=retries(retry_limit),
        pod_spec_patch=pod_spec_patch,
    )


def common_parameters() -> list[Parameter]:
    """Parameters every landstack workflow takes (image and configuration)."""
    return [
        Parameter(name="image", value=DEFAULT_IMAGE, description="the pipeline image"),
        Parameter(
            name="config-map",
            value="landstack-pipeline",
            description="ConfigMap with the LANDSTACK_* settings (store URL, S3 endpoint, STAC API)",
        ),
    ]


def workflow_options() -> dict[str, Any]:
    """Pod-level settings shared by every workflow: security, /tmp volume, service account, cleanup."""
    return {
        "service_account_name": SERVICE_ACCOUNT,
        "security_context": m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            run_as_group=10001,
            fs_group=10001,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        "volumes": [m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource())],
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),
        "ttl_strategy": m.TTLStrategy(seconds_after_completion=7 * 24 * 3600),
    }


def task(template: Container | Resource | Any, name: str, **kwargs: Any) -> Task:
    """A DAG task calling `template` (inside a `DAG` context); typed, so `>>` type-checks."""
    t = template(name=name, **kwargs)
    if not isinstance(t, Task):
        raise TypeError(f"{name}: templates are called inside a DAG context")
    return t
