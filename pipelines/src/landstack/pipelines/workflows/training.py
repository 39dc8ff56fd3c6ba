"""The training workflows: training data → training per production unit → the accuracy gate →
registration → release → rollout, the rollout only when the accuracy targets are met.

Two WorkflowTemplates share the tail:
- `landstack-training` (pixel models, the TempCNN): samples at the labelled points through the
  Sentinel-2 STAC API → label cleaning → `plan-units` (one table per production unit with enough
  samples, plus the fallback) → training fanned out per unit (`withParam`) → `accept-models`;
- `landstack-training-patches` (U-Net, impervious CNN): patch features over the AOI → training
  against a truth raster → `accept-models`.
Only when every model met its targets (held-out, grouped evaluation inside the train step) are
the models registered, gathered into one release folder (``releases/<model-name>/<release>/``: every
unit's ``<name>-<unit>`` and ``<name>-fallback``, or the one model) and the model server's
InferenceService patched to serve that release with canary traffic; otherwise the run ends with a
report and no rollout. The rollout always names a release, with or without units, so an
InferenceService's storage URI has one shape after any training run.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG, Container, Parameter, Resource, Task, WorkflowTemplate

from landstack.pipelines.workflows._common import (
    Raw,
    common_parameters,
    param,
    payload,
    retries,
    step_template,
    task,
    workflow_options,
)

NAME = "landstack-training"
PATCHES_NAME = "landstack-training-patches"
_MET = "{{=jsonpath(tasks.evaluate.outputs.result, '$.targets_met')}}"

# A JSON patch of the InferenceService (custom predictor): KServe's storage initializer copies the
# container's STORAGE_URI to /mnt/models, so the rollout points it (env[0], checked by the `test` op)
# at the run's release folder (<registry>/releases/<model-name>/<release>/: every unit's model and the
# fallback, or the one model, each served under its registry name), with canary traffic; KServe keeps
# the previous revision serving the rest until the canary is promoted. A merge patch cannot do this:
# it would replace the whole containers list. (An f-string: the doubled braces below are Argo's {{...}}.)
_ROLLOUT = """- op: test
  path: /spec/predictor/containers/0/env/0/name
  value: STORAGE_URI
- op: replace
  path: /spec/predictor/containers/0/env/0/value
  value: "{{inputs.parameters.storage-uri}}"
- op: add
  path: /spec/predictor/canaryTrafficPercent
  value: {{workflow.parameters.canary-percent}}
- op: add
  path: /metadata/annotations/landstack.io~1model-version
  value: "{{inputs.parameters.version}}"
"""


def _common_arguments(model_name: str, family: str) -> list[Parameter]:
    return [
        Parameter(name="source", description="Sentinel-2 STAC API URL"),
        Parameter(name="collection", value="sentinel-2-l2a", description="Sentinel-2 collection id"),
        Parameter(name="year", value="2024", description="reference year of the training data"),
        Parameter(name="aoi", description="bbox [minx, miny, maxx, maxy] in EPSG:4326 of the training data"),
        Parameter(
            name="model-name",
            value=model_name,
            description="registry name; with units the models are <name>-<unit> and <name>-fallback",
        ),
        Parameter(name="epochs", value="30", description="maximum training epochs"),
        Parameter(
            name="registry-url",
            value="",
            description="registry root: the rollout serves <registry-url>/releases/<model-name>/<release>/",
        ),
        Parameter(
            name="inference-service",
            value=f"landstack-model-{family}",
            description="InferenceService to roll out to (the chart sets its <release>-model-<family>)",
        ),
        Parameter(name="canary-percent", value="10", description="traffic share of the new version"),
        Parameter(name="force", value="false", description="recompute outputs that already exist"),
        *common_parameters(),
    ]


def _tail(train: Task, templates: dict[str, Any]) -> None:
    """evaluate (the gate) → register (fan-out) → release → rollout, or report; inside the main DAG."""
    e = task(
        templates["accept"],
        "evaluate",
        arguments={"input": payload(trained=Raw("{{tasks.train.outputs.result}}"))},
    )
    r = task(
        templates["register"],
        "register",
        arguments={
            "input": payload(
                model_url="{{item.model_url}}",
                metrics_url="{{item.metrics_url}}",
                name="{{item.name}}",
                version="{{item.version}}",
                registry_url=param("registry-url"),
            )
        },
        with_param="{{=jsonpath(tasks.evaluate.outputs.result, '$.models')}}",
        when=f"{_MET} == true",
    )
    rel = task(
        templates["release"],
        "release",
        arguments={
            "input": payload(
                name=param("model-name"),
                registered=Raw("{{tasks.register.outputs.result}}"),
                registry_url=param("registry-url"),
            )
        },
        when=f"{_MET} == true",
    )
    ro = task(
        templates["rollout"],
        "rollout",
        arguments={
            "storage-uri": "{{=jsonpath(tasks.release.outputs.result, '$.storage_uri')}}",
            "version": "{{=jsonpath(tasks.release.outputs.result, '$.version')}}",
        },
        when=f"{_MET} == true",
    )
    rep = task(
        templates["report"],
        "report",
        arguments={
            "input": payload(run="{{workflow.name}}", evaluation=Raw("{{tasks.evaluate.outputs.result}}"))
        },
        when=f"{_MET} != true",
    )
    for before, after in ((train, e), (e, r), (e, rep), (r, rel), (rel, ro)):
        before >> after


def _tail_templates() -> dict[str, Container | Resource]:
    return {
        "accept": step_template("accept-models", "accept-models", cpu="250m", memory="512Mi", deadline_s=300),
        "register": step_template("register", "register", cpu="500m", memory="1Gi", deadline_s=600),
        "release": step_template("release", "release", cpu="500m", memory="1Gi", deadline_s=1800),
        "report": step_template("report", "training-report", cpu="250m", memory="512Mi", deadline_s=300),
        "rollout": Resource(
            name="rollout",
            action="patch",
            merge_strategy="json",
            flags=["inferenceservice", "{{workflow.parameters.inference-service}}"],
            manifest=_ROLLOUT,
            inputs=[Parameter(name="storage-uri"), Parameter(name="version")],
            retry_strategy=retries(2),
        ),
    }


def build() -> WorkflowTemplate:
    """The pixel-model (TempCNN) training WorkflowTemplate."""
    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        active_deadline_seconds=24 * 3600,
        arguments=[
            Parameter(name="labels", description="labelled points (Parquet URL: x, y, label[, group])"),
            Parameter(name="labels-crs", value="EPSG:4326", description="CRS of the points"),
            Parameter(name="units", value="", description="production-unit polygons (GeoJSON URL) or empty"),
            Parameter(
                name="min-unit-samples", value="500", description="samples a unit needs for its own model"
            ),
            Parameter(
                name="clean-labels", value="true", description="drop labels cleanlab flags (true/false)"
            ),
            Parameter(name="clean-iterations", value="15", description="label cleaning: repeated splits"),
            Parameter(name="clean-epochs", value="20", description="label cleaning: epochs of each fit"),
            *_common_arguments("tempcnn", "tempcnn"),
        ],
        **workflow_options(),
    ) as wt:
        samples = step_template("samples", "samples", cpu="2", memory="8Gi", deadline_s=6 * 3600)
        clean = step_template("clean-labels", "clean-labels", cpu="2", memory="4Gi")
        plan = step_template("plan-units", "plan-units", cpu="500m", memory="2Gi", deadline_s=900)
        train = step_template("train", "train", cpu="4", memory="8Gi", deadline_s=12 * 3600)
        tail = _tail_templates()
        with DAG(name="main"):
            s = task(
                samples,
                "samples",
                arguments={
                    "input": payload(
                        bbox=Raw(param("aoi")),
                        year=Raw(param("year")),
                        api_url=param("source"),
                        collection=param("collection"),
                        points_url=param("labels"),
                        points_crs=param("labels-crs"),
                        force=Raw(param("force")),
                    )
                },
            )
            c = task(
                clean,
                "clean-labels",
                arguments={
                    "input": payload(
                        table_url="{{=jsonpath(tasks.samples.outputs.result, '$.table_url')}}",
                        enabled=Raw(param("clean-labels")),
                        iterations=Raw(param("clean-iterations")),
                        epochs=Raw(param("clean-epochs")),
                        force=Raw(param("force")),
                    )
                },
            )
            p = task(
                plan,
                "plan-units",
                arguments={
                    "input": payload(
                        table_url="{{=jsonpath(tasks['clean-labels'].outputs.result, '$.table_url')}}",
                        units=param("units"),
                        min_samples=Raw(param("min-unit-samples")),
                        model_name=param("model-name"),
                    )
                },
            )
            t = task(
                train,
                "train",
                arguments={
                    "input": payload(
                        architecture="tempcnn",
                        samples="{{item.table}}",
                        name="{{item.model}}",
                        epochs=Raw(param("epochs")),
                        force=Raw(param("force")),
                    )
                },
                with_param="{{=jsonpath(tasks['plan-units'].outputs.result, '$.units')}}",
            )
            for before, after in ((s, c), (c, p), (p, t)):
                before >> after
            _tail(t, tail)
    return wt


def build_patches() -> WorkflowTemplate:
    """The patch-model (U-Net, impervious CNN) training WorkflowTemplate."""
    with WorkflowTemplate(
        name=PATCHES_NAME,
        entrypoint="main",
        active_deadline_seconds=24 * 3600,
        arguments=[
            Parameter(name="architecture", value="unet", description="unet or impervious"),
            Parameter(name="truth", description="truth raster URL (IMD %, built-up m² bands, or classes)"),
            Parameter(name="patch-size", value="64", description="training patch size in pixels"),
            Parameter(name="patches", value="300", description="patches cut from the rasters"),
            *_common_arguments("unet-imd", "unet"),
        ],
        **workflow_options(),
    ) as wt:
        features = step_template("features", "features", cpu="2", memory="8Gi", deadline_s=6 * 3600)
        train = step_template("train", "train", cpu="4", memory="8Gi", deadline_s=12 * 3600)
        tail = _tail_templates()
        with DAG(name="main"):
            f = task(
                features,
                "features",
                arguments={
                    "input": payload(
                        kind="unet",
                        bbox=Raw(param("aoi")),
                        year=Raw(param("year")),
                        api_url=param("source"),
                        collection=param("collection"),
                        force=Raw(param("force")),
                    )
                },
            )
            t = task(
                train,
                "train",
                arguments={
                    "input": payload(
                        architecture=param("architecture"),
                        features=Raw("{{=jsonpath(tasks.features.outputs.result, '$.urls')}}"),
                        truth=param("truth"),
                        patch_size=Raw(param("patch-size")),
                        patches=Raw(param("patches")),
                        name=param("model-name"),
                        epochs=Raw(param("epochs")),
                        force=Raw(param("force")),
                    )
                },
                with_items=["all"],  # one unit: the same aggregated output shape as the pixel workflow
            )
            f >> t
            _tail(t, tail)
    return wt
