"""The production workflow: roll-out tiles → predict → post-process → assemble → publish → summary.

A WorkflowTemplate. `list-tiles` turns the AOI (or an explicit tile list) into 25 km roll-out tiles
and the product tiles they feed; each roll-out tile fans out (`withParam`) through predict and
post-process (with production units, predict runs each unit's model over its own buffered area and
post-processing blends them); each product tile is assembled (mosaic, COGs, thumbnail, STAC item)
once its inputs exist; publishing loads the items into the STAC API; the summary reports what was produced.
Every step is idempotent: a tile whose output item already exists with the same inputs is skipped
unless `force` is true. GPUs are requested only by predict, and only when `predict-gpus` > 0 (the
`local` backend on a GPU node; the `kserve` backend needs none).
"""

from __future__ import annotations

from hera.workflows import DAG, Parameter, WorkflowTemplate

from landstack.pipelines.workflows._common import (
    Raw,
    common_parameters,
    param,
    payload,
    step_template,
    task,
    workflow_options,
)

NAME = "landstack-production"
FAMILIES = '["clcplus-backbone", "hrl-imperviousness", "emc-built", "cisc"]'

_GPU_PATCH = (
    '{"containers": [{"name": "main", "resources": {"limits": '
    '{"nvidia.com/gpu": "{{workflow.parameters.predict-gpus}}"}}}]}'
)


def build() -> WorkflowTemplate:
    """The production WorkflowTemplate."""
    with WorkflowTemplate(
        name=NAME,
        entrypoint="main",
        active_deadline_seconds=48 * 3600,
        parallelism=64,
        arguments=[
            Parameter(
                name="aoi", value="[]", description="bbox [minx, miny, maxx, maxy] in EPSG:4326, or []"
            ),
            Parameter(
                name="tiles", value="[]", description="roll-out tile codes (JSON list); [] = from the AOI"
            ),
            Parameter(name="families", value=FAMILIES, description="product families (JSON list)"),
            Parameter(name="year", value="2024", description="reference year"),
            Parameter(name="previous-year", value="0", description="previous reference year (0 = none)"),
            Parameter(name="source", description="Sentinel-2 STAC API URL or static collection.json URL"),
            Parameter(name="collection", value="sentinel-2-l2a", description="Sentinel-2 collection id"),
            Parameter(name="models", value="{}", description="family -> model name[:version] (JSON)"),
            Parameter(name="backend", value="kserve", description="predict backend: kserve or local"),
            Parameter(name="model-servers", value="{}", description="model name -> V2 endpoint URL (JSON)"),
            Parameter(
                name="units",
                value="",
                description="production-unit polygons (GeoJSON URL; EPSG:3035 or a crs member) or empty: "
                "each unit is predicted by <model>-<unit> (else <model>-fallback) and blended",
            ),
            Parameter(name="unit-property", value="unit", description="polygon property holding the unit id"),
            Parameter(
                name="unit-buffer-m",
                value="10000",
                description="each unit is predicted this far beyond its edge",
            ),
            Parameter(name="predict-gpus", value="0", description="GPUs per predict pod (local backend)"),
            Parameter(name="force", value="false", description="recompute outputs that already exist"),
            Parameter(
                name="truth", value="{}", description="truth rasters for the summary's accuracy (JSON)"
            ),
            *common_parameters(),
        ],
        **workflow_options(),
    ) as wt:
        list_tiles = step_template("list-tiles", "list-tiles", cpu="500m", memory="512Mi", deadline_s=600)
        predict = step_template(
            "predict", "predict", cpu="4", memory="12Gi", deadline_s=6 * 3600, pod_spec_patch=_GPU_PATCH
        )
        postprocess = step_template("postprocess", "postprocess", cpu="2", memory="8Gi", deadline_s=3 * 3600)
        assemble = step_template("assemble", "assemble", cpu="2", memory="8Gi", deadline_s=3 * 3600)
        publish = step_template("publish", "publish", cpu="500m", memory="1Gi", deadline_s=1800)
        summary = step_template("summary", "summary", cpu="500m", memory="1Gi", deadline_s=600)

        with DAG(name="tile", inputs=[Parameter(name="tile")]) as tile:
            p = task(
                predict,
                "predict",
                arguments={
                    "input": payload(
                        tile="{{inputs.parameters.tile}}",
                        aoi=Raw(param("aoi")),
                        year=Raw(param("year")),
                        families=Raw(param("families")),
                        source=param("source"),
                        collection=param("collection"),
                        models=Raw(param("models")),
                        backend=param("backend"),
                        model_servers=Raw(param("model-servers")),
                        units=param("units"),
                        unit_property=param("unit-property"),
                        unit_buffer_m=Raw(param("unit-buffer-m")),
                        force=Raw(param("force")),
                    )
                },
            )
            q = task(
                postprocess,
                "postprocess",
                arguments={
                    "input": payload(
                        prediction="{{=jsonpath(tasks.predict.outputs.result, '$.item')}}",
                        families=Raw(param("families")),
                        previous_year=Raw(param("previous-year")),
                        force=Raw(param("force")),
                    )
                },
            )
            p >> q

        with DAG(name="main"):
            t = task(
                list_tiles,
                "list-tiles",
                arguments={
                    "input": payload(
                        aoi=Raw(param("aoi")),
                        tiles=Raw(param("tiles")),
                        families=Raw(param("families")),
                        year=Raw(param("year")),
                    )
                },
            )
            per_tile = task(
                tile,
                "tiles",
                arguments={"tile": "{{item}}"},
                with_param="{{=jsonpath(tasks['list-tiles'].outputs.result, '$.tiles')}}",
            )
            a = task(
                assemble,
                "assemble",
                arguments={
                    "input": payload(
                        product_tile="{{item}}",
                        year=Raw(param("year")),
                        families=Raw(param("families")),
                        force=Raw(param("force")),
                    )
                },
                with_param="{{=jsonpath(tasks['list-tiles'].outputs.result, '$.product_tiles')}}",
            )
            pub = task(
                publish,
                "publish",
                # every assembled item lies under the products prefix; upserts make re-publishing harmless
                arguments={"input": payload(items=["products"], allow_refused=False)},
            )
            s = task(
                summary,
                "summary",
                arguments={
                    "input": payload(
                        run="{{workflow.name}}",
                        year=Raw(param("year")),
                        families=Raw(param("families")),
                        published=Raw("{{tasks.publish.outputs.result}}"),
                        truth=Raw(param("truth")),
                    )
                },
            )
            for before, after in ((t, per_tile), (per_tile, a), (a, pub), (pub, s)):
                before >> after
    return wt
