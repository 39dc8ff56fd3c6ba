"""The retraining trigger: a CronWorkflow that looks for new Sentinel-2 data and submits training.

`detect-new` searches the Sentinel-2 STAC API for what is new since its last run — a new
collection, items of a new processing baseline, or a reference year that became complete —
keeping what it has seen in the object store. Only when something is new does `submit` submit the
training WorkflowTemplate (through the Argo Server API in the cluster, or to the local runner on
one machine). A second run with nothing new submits nothing.
"""

from __future__ import annotations

from hera.workflows import DAG, CronWorkflow, Parameter

from landstack.pipelines.workflows import training
from landstack.pipelines.workflows._common import (
    Raw,
    common_parameters,
    param,
    payload,
    step_template,
    task,
    workflow_options,
)

NAME = "landstack-retraining-trigger"
_NEW = "{{=jsonpath(tasks['detect-new'].outputs.result, '$.new')}}"


def build() -> CronWorkflow:
    """The retraining-trigger CronWorkflow (daily at 03:00 UTC, never two at once)."""
    with CronWorkflow(
        name=NAME,
        schedules=["0 3 * * *"],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        entrypoint="main",
        active_deadline_seconds=3600,
        arguments=[
            Parameter(name="source", description="Sentinel-2 STAC API URL"),
            Parameter(
                name="collections", value='["sentinel-2*"]', description="collection id patterns (JSON)"
            ),
            Parameter(name="labels", description="labelled samples for the training run (URL)"),
            Parameter(
                name="training-parameters",
                value="{}",
                description='training parameters (JSON), e.g. {"aoi": "[minx, miny, maxx, maxy]"}',
            ),
            *common_parameters(),
        ],
        **workflow_options(),
    ) as cw:
        detect = step_template("detect-new", "detect-new", cpu="500m", memory="512Mi", deadline_s=900)
        submit = step_template("submit", "submit-workflow", cpu="250m", memory="256Mi", deadline_s=300)
        with DAG(name="main"):
            d = task(
                detect,
                "detect-new",
                arguments={"input": payload(source=param("source"), collections=Raw(param("collections")))},
            )
            s = task(
                submit,
                "submit",
                arguments={
                    "input": payload(
                        workflow=training.NAME,
                        reason=Raw("{{=jsonpath(tasks['detect-new'].outputs.result, '$.changes')}}"),
                        parameters=Raw(param("training-parameters")),
                        source=param("source"),
                        labels=param("labels"),
                        collection="{{=jsonpath(tasks['detect-new'].outputs.result, '$.collection')}}",
                        year=Raw("{{=jsonpath(tasks['detect-new'].outputs.result, '$.year')}}"),
                        pending_state="{{=jsonpath(tasks['detect-new'].outputs.result, '$.pending_state')}}",
                    )
                },
                when=f"{_NEW} == true",
            )
            d >> s
    return cw
