"""The Helm chart lints, renders with defaults and each profile, validates, and is hardened and wired.

Every rendered manifest validates against the offline schemas (core kinds: ../shared Kubernetes
schemas and kubernetes-validate's bundled ones; InferenceServices: the KServe CRD; workflows: the
Argo schema). Assertions: every container command is a real entry point, images come from values,
no secret material in values or ConfigMaps, every pod and container is hardened, the settings the
containers get are settings the apps read.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from landstack.model_server.settings import ModelServerSettings
from landstack.pipelines.settings import Settings as PipelineSettings
from landstack.stac_api.settings import ApiSettings
from landstack.tiler.settings import TilerSettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landstack"
K8S_VERSION = "1.34.0"
SCHEMA_FOR_KIND = {
    "Deployment": "deployment-apps-v1.json",
    "StatefulSet": "statefulset-apps-v1.json",
    "Service": "service-v1.json",
    "ServiceAccount": "serviceaccount-v1.json",
    "ConfigMap": "configmap-v1.json",
    "HorizontalPodAutoscaler": "horizontalpodautoscaler-autoscaling-v2.json",
    "PodDisruptionBudget": "poddisruptionbudget-policy-v1.json",
    "Ingress": "ingress-networking-v1.json",
    "Job": "job-batch-v1.json",
    "NetworkPolicy": "networkpolicy-networking-v1.json",
    "Role": "role-rbac-v1.json",
    "RoleBinding": "rolebinding-rbac-v1.json",
}
ARGO_KINDS = {"WorkflowTemplate", "CronWorkflow", "Workflow"}
# The model servers are off until a registered version is given; these serve one per family.
VERSIONS = {
    "tempcnn": ("tempcnn", "3f9c2a1b7d4e"),
    "unet": ("unet-imd", "0.2.0"),
    "impervious": ("impervious-cnn", "7"),
}
SERVE_ALL = [
    arg
    for family, (_, version) in VERSIONS.items()
    for arg in (
        "--set", f"modelServers.{family}.enabled=true",
        "--set", f"modelServers.{family}.model.version={version}",
    )
]  # fmt: skip
# Every optional template switched on, with an external database.
ALL_ON = [
    "--set", "stacApi.autoscaling.enabled=true",
    "--set", "stacApi.ingress.enabled=true",
    "--set", "stacApi.ingress.tlsSecret=stac-tls",
    "--set", "tiler.enabled=true",
    "--set", "tiler.autoscaling.enabled=true",
    "--set", "tiler.ingress.enabled=true",
    "--set", "tiler.ingress.tlsSecret=maps-tls",
    "--set", "modelServers.unet.canaryTrafficPercent=10",
    *SERVE_ALL,
]  # fmt: skip
VARIANTS = {
    "defaults": [],
    "dev": ["-f", str(CHART / "values-dev.yaml")],
    "production": ["-f", str(CHART / "values-production.yaml")],
    "all-on": ALL_ON,
}
SENSITIVE = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|API_KEYS", re.IGNORECASE)


def _pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "Job"):
        return [spec["template"]["spec"]]
    if kind == "InferenceService":
        return [spec["predictor"]]
    if kind == "CronWorkflow":
        return [spec["workflowSpec"]]
    if kind in ARGO_KINDS:
        return [spec]
    return []


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for spec in _pod_specs(doc):
        if doc["kind"] in ARGO_KINDS:
            for tpl in spec.get("templates", []):
                out += [tpl[k] for k in ("container", "script") if k in tpl]
        else:
            out += spec.get("initContainers", []) + spec.get("containers", [])
    return out


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _one(docs: list[dict[str, Any]], kind: str, name_part: str = "") -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and name_part in d["metadata"]["name"]]
    assert len(hits) == 1, (kind, name_part, [d["metadata"]["name"] for d in hits])
    return hits[0]


def _project_scripts() -> set[str]:
    members = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    scripts: set[str] = set()
    for member in members:
        project = tomllib.loads((REPO / member / "pyproject.toml").read_text())["project"]
        scripts |= set(project.get("scripts", {}))
    return scripts


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_helm_lint_strict(helm: str, variant: str) -> None:
    proc = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *VARIANTS[variant]], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_rendered_manifest_validates(render: Any, schemas: ModuleType, variant: str) -> None:
    docs = render(*VARIANTS[variant])
    kserve = schemas.kserve_validator()
    argo = schemas.argo_validator("v3.7.18")
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "InferenceService":
            errors = [e.message for e in kserve.iter_errors(doc)]
        elif kind in ARGO_KINDS:
            errors = [e.message for e in argo.iter_errors(doc)]
        else:
            assert kind in SCHEMA_FOR_KIND, f"no schema mapped for {kind}: add it to SCHEMA_FOR_KIND"
            errors = [e.message for e in schemas.k8s_validator(SCHEMA_FOR_KIND[kind]).iter_errors(doc)]
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except ValidationError as e:
                errors.append(f"kubernetes-validate: {e.message} at {list(e.path)}")
        assert errors == [], (variant, kind, name, errors)


def test_default_render_has_every_component(render: Any) -> None:
    assert "InferenceService" not in [d["kind"] for d in render()]  # off until a version is set
    kinds = [d["kind"] for d in render(*SERVE_ALL)]
    assert kinds.count("InferenceService") == 3
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "Job"):
        assert kind in kinds
    assert {"ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"} <= set(kinds)
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    assert "Secret" not in kinds  # credentials only through existingSecret references


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_pod_and_container_is_hardened(render: Any, variant: str) -> None:
    for doc in render(*VARIANTS[variant]):
        for spec in _pod_specs(doc):
            where = f"{variant}: {doc['kind']} {doc['metadata']['name']}"
            psc = spec.get("securityContext", {})
            assert psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, where
            assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
            for c in _containers(doc):
                sc = c.get("securityContext", {})
                assert sc.get("allowPrivilegeEscalation") is False, (where, c.get("name"))
                assert sc.get("readOnlyRootFilesystem") is True, (where, c.get("name"))
                assert sc.get("capabilities", {}).get("drop") == ["ALL"], (where, c.get("name"))
                assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", (where, c.get("name"))
                res = c.get("resources", {})
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(res.get(part, {})), (where, c.get("name"), part)
                mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                assert mounts.get("/tmp") in tmp_volumes, (where, c.get("name"), "needs an emptyDir on /tmp")


def test_container_commands_are_entry_points_of_the_project(render: Any) -> None:
    scripts = _project_scripts()
    # The migration Job runs pypgstac's own command, installed in the STAC API image.
    image_commands = {"stac-api": scripts | {"pypgstac"}}
    venv_bin = REPO / ".venv" / "bin"
    seen = set()
    for doc in render(*ALL_ON):
        for c in _containers(doc):
            if "postgis" in c["image"]:
                continue  # third-party database image: its own entrypoint
            command = c.get("command")
            assert command, f"{doc['metadata']['name']}/{c.get('name')}: set the command explicitly"
            allowed = image_commands.get(c["image"].split("/")[-1].split(":")[0], scripts)
            assert command[0] in allowed, (doc["metadata"]["name"], command)
            assert (venv_bin / command[0]).exists() or not venv_bin.exists(), command[0]
            seen.add(command[0])
    assert {"landstack-stac-api", "landstack-model-server", "pypgstac", "landstack-tiler"} <= seen
    assert "landstack" in seen  # the workflow steps


def test_images_and_tags_come_from_values(render: Any) -> None:
    docs = render(
        *ALL_ON,
        "--set", "stacApi.image.repository=reg.example/a/api", "--set", "stacApi.image.tag=1.2.3",
        "--set", "tiler.image.repository=reg.example/a/tiler", "--set", "tiler.image.tag=t4",
        "--set", "modelServers.tempcnn.image.repository=reg.example/a/ms",
        "--set", "modelServers.tempcnn.image.tag=t1",
        "--set", "workflows.image.repository=reg.example/a/pipe", "--set", "workflows.image.tag=p1",
        "--set", "database.internal.image.tag=16-3.5",
    )  # fmt: skip
    api = _one(docs, "Deployment", "stac-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["image"] == "reg.example/a/api:1.2.3"
    job = _one(docs, "Job", "migrate")["spec"]["template"]["spec"]["containers"][0]
    assert job["image"] == "reg.example/a/api:1.2.3"
    assert _one(docs, "Deployment", "tiler")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "reg.example/a/tiler:t4"
    )
    isvc = _one(docs, "InferenceService", "tempcnn")["spec"]["predictor"]["containers"][0]
    assert isvc["image"] == "reg.example/a/ms:t1"
    unet = _one(docs, "InferenceService", "unet")["spec"]["predictor"]["containers"][0]
    assert unet["image"] == "landstack/model-server:0.1.0"  # the chart's appVersion by default
    pg = _one(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    assert pg["image"] == "docker.io/postgis/postgis:16-3.5"
    for wf in (d for d in docs if d["kind"] in ARGO_KINDS):
        spec = wf["spec"].get("workflowSpec", wf["spec"])
        params = {p["name"]: p.get("value") for p in spec.get("arguments", {}).get("parameters", [])}
        assert params.get("image") == "reg.example/a/pipe:p1", wf["metadata"]["name"]
        for c in _containers(wf):
            assert c["image"] in ("{{workflow.parameters.image}}", "reg.example/a/pipe:p1")


def test_no_secret_material_in_values_or_configmaps(render: Any) -> None:
    for values in ("values.yaml", "values-dev.yaml", "values-production.yaml"):
        for path in _leaf_paths(yaml.safe_load((CHART / values).read_text()), ""):
            leaf = path.rsplit(".", 1)[-1]
            if re.search(r"password|secret|token|key", leaf, re.IGNORECASE) and leaf not in (
                "existingSecret",
                "tlsSecret",
                "imagePullSecrets",
                "key",
            ):
                pytest.fail(f"{values}: {path} looks like secret material; reference a Secret instead")
    for variant in VARIANTS.values():
        for doc in render(*variant):
            if doc["kind"] == "ConfigMap":
                assert not [k for k in doc["data"] if SENSITIVE.search(k)], doc["data"]
            for c in _containers(doc):
                for name, entry in _env(c).items():
                    if SENSITIVE.search(name):
                        assert "secretKeyRef" in entry.get("valueFrom", {}), (doc["metadata"]["name"], name)


def _leaf_paths(node: Any, path: str) -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, f"{path}.{k}")]
    return [path]


def _setting_names(settings: type, prefix: str) -> set[str]:
    return {f"{prefix}{name}".upper() for name in settings.model_fields}  # type: ignore[attr-defined]


def test_the_containers_get_only_settings_the_apps_read(render: Any) -> None:
    docs = render(
        "-f", str(CHART / "values-production.yaml"),
        "--set", "global.objectStore.endpointUrl=http://minio:9000",
        "--set", "global.objectStore.region=eu-west-3",
        *SERVE_ALL,
    )  # fmt: skip
    api_names = _setting_names(ApiSettings, "LANDSTACK_API_")
    config = _one(docs, "ConfigMap", "stac-api")["data"]
    api = _one(docs, "Deployment", "stac-api")["spec"]["template"]["spec"]["containers"][0]
    env = set(config) | set(_env(api))
    assert env <= api_names, env - api_names
    assert not any(n.startswith(("LANDSTACK_STORE", "LANDSTACK_S3")) for n in env)
    assert config["LANDSTACK_API_DB_HOST"] == "pgstac.db.example.org"
    assert config["LANDSTACK_API_OIDC_JWKS_URL"].startswith("https://login.example.org/")

    # STORAGE_URI is KServe's (its storage initializer downloads it); the server reads /mnt/models.
    ms_names = _setting_names(ModelServerSettings, "LANDSTACK_MODEL_SERVER_") | {"STORAGE_URI"}
    isvcs = [d for d in docs if d["kind"] == "InferenceService"]
    assert len(isvcs) == 3
    for isvc in isvcs:
        c = isvc["spec"]["predictor"]["containers"][0]
        env_map = _env(c)
        assert set(env_map) <= ms_names, set(env_map) - ms_names
        assert not [n for n in env_map if "S3" in n or "REGISTRY" in n]  # the server reads no store
        assert c["args"] == ["--model_dir=/mnt/models"]
        # The model is named once, in the settings; no flag repeats it.
        assert not any("model_name" in a for a in c.get("args", []) + c["command"])

    tiler_names = _setting_names(TilerSettings, "LANDSTACK_TILER_")
    tiler_config = _one(docs, "ConfigMap", "tiler")["data"]
    tiler = _one(docs, "Deployment", "tiler")["spec"]["template"]["spec"]["containers"][0]
    tiler_env = set(tiler_config) | set(_env(tiler))
    # GDAL (titiler's tile reads) takes S3 credentials only from its process environment.
    gdal_names = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert tiler_env <= tiler_names | gdal_names, tiler_env - tiler_names - gdal_names
    assert tiler_config["LANDSTACK_TILER_DB_HOST"] == "pgstac.db.example.org"
    assert tiler_config["LANDSTACK_TILER_S3_REGION"] == "eu-west-3"
    assert tiler_config["LANDSTACK_TILER_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert tiler_config["LANDSTACK_TILER_API_URL"] == "https://stac.example.org"  # what a browser reaches
    assert _env(tiler)["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "landstack-s3"

    pipe_names = _setting_names(PipelineSettings, "LANDSTACK_")
    wf_config = _one(docs, "ConfigMap", "workflows")["data"]
    assert set(wf_config) <= pipe_names, set(wf_config) - pipe_names
    assert wf_config["LANDSTACK_S3_REGION"] == "eu-west-3"
    assert wf_config["LANDSTACK_STAC_API_URL"] == "http://rel-landstack-stac-api:8080"
    for wf in (d for d in docs if d["kind"] in ARGO_KINDS):
        for c in _containers(wf):
            assert set(_env(c)) <= pipe_names, set(_env(c)) - pipe_names


@pytest.mark.parametrize(
    ("component", "setting"),
    [
        ("stac-api", "stacApi.env.LANDSTACK_API_CORS_ORIGINS=https://x.example"),
        ("tiler", "tiler.env.LANDSTACK_TILER_CORS_ORIGINS=https://x.example"),
    ],
)
def test_config_change_rolls_the_pods(render: Any, component: str, setting: str) -> None:
    def checksum(*args: str) -> str:
        dep = _one(render(*args), "Deployment", component)
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    base = checksum()
    assert checksum() == base
    assert checksum("--set", setting) != base


@pytest.mark.parametrize("component", ["stac-api", "tiler"])
def test_probes_target_the_served_paths(render: Any, component: str) -> None:
    docs = render()
    c = _one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
    probes = {p: c[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    # requested against the running apps in test_probes; liveness never depends on the database
    assert probes == {
        "startupProbe": "/_mgmt/ping",
        "readinessProbe": "/_mgmt/health",
        "livenessProbe": "/_mgmt/ping",
    }


@pytest.mark.parametrize("variant", ["defaults", "dev", "production"])
def test_the_tiler_is_deployed_and_linked_from_the_api(render: Any, variant: str) -> None:
    docs = render(*VARIANTS[variant])
    for kind in ("Deployment", "Service", "ConfigMap", "ServiceAccount", "NetworkPolicy"):
        _one(docs, kind, "tiler")
    deploy = _one(docs, "Deployment", "tiler")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == _one(docs, "ServiceAccount", "tiler")["metadata"]["name"]
    assert pod["containers"][0]["command"] == ["landstack-tiler"]
    password = _env(pod["containers"][0])["LANDSTACK_TILER_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "landstack-pgstac", "key": "password"}
    service = _one(docs, "Service", "tiler")["spec"]
    assert service["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == "http"
    api_config = _one(docs, "ConfigMap", "stac-api")["data"]
    if variant == "production":
        hpa = _one(docs, "HorizontalPodAutoscaler", "tiler")["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 12)
        assert "replicas" not in deploy["spec"]  # the HPA owns the replica count
        assert _one(docs, "PodDisruptionBudget", "tiler")["spec"]["minAvailable"] == 1
        ingress = _one(docs, "Ingress", "tiler")["spec"]
        assert ingress["tls"] == [{"hosts": ["maps.example.org"], "secretName": "maps-example-org-tls"}]
        assert ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "rel-landstack-tiler"
        assert api_config["LANDSTACK_API_TILER_URL"] == "https://maps.example.org"
    else:
        assert not [d for d in docs if d["kind"] == "Ingress" and "tiler" in d["metadata"]["name"]]
        assert api_config["LANDSTACK_API_TILER_URL"] == "http://rel-landstack-tiler.landstack.svc:8080"
        assert deploy["spec"]["replicas"] == (1 if variant == "dev" else 2)
    # another public URL wins over the derived one; without the tiler the API links to no tiler
    other = _one(
        render("--set", "stacApi.env.LANDSTACK_API_TILER_URL=https://tiles.example.net"),
        "ConfigMap",
        "stac-api",
    )["data"]
    assert other["LANDSTACK_API_TILER_URL"] == "https://tiles.example.net"
    off = render("--set", "tiler.enabled=false")
    assert not [d for d in off if "tiler" in d["metadata"]["name"]]
    assert "LANDSTACK_API_TILER_URL" not in _one(off, "ConfigMap", "stac-api")["data"]


def test_database_internal_for_dev_external_for_production(render: Any, helm: str) -> None:
    dev = render("-f", str(CHART / "values-dev.yaml"))
    sts = _one(dev, "StatefulSet", "postgres")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    job = _one(dev, "Job", "migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    job_env = _env(job["spec"]["template"]["spec"]["containers"][0])
    assert job_env["PGHOST"]["value"] == "rel-landstack-postgres"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["pypgstac", "migrate"]

    prod = render("-f", str(CHART / "values-production.yaml"))
    assert not [d for d in prod if d["kind"] == "StatefulSet"]
    job = _one(prod, "Job", "migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert (
        _env(job["spec"]["template"]["spec"]["containers"][0])["PGHOST"]["value"] == "pgstac.db.example.org"
    )

    proc = subprocess.run(
        [helm, "template", "rel", str(CHART), "--set", "database.internal.enabled=false"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "database.host is required" in proc.stderr


def test_inference_services_gpu_replicas_canary_and_model_source(render: Any) -> None:
    docs = render("-f", str(CHART / "values-production.yaml"), *ALL_ON)
    unet = _one(docs, "InferenceService", "unet")
    pred = unet["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10
    assert (pred["minReplicas"], pred["maxReplicas"]) == (1, 4)
    assert pred["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pred["tolerations"]
    tempcnn = _one(docs, "InferenceService", "tempcnn")["spec"]["predictor"]
    assert "canaryTrafficPercent" not in tempcnn  # 100 %: no canary
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for family, (model, version) in VERSIONS.items():
        isvc = _one(docs, "InferenceService", f"model-{family}")
        container = isvc["spec"]["predictor"]["containers"][0]
        # KServe's convention for custom containers: STORAGE_URI on kserve-container; env[0], the
        # element the training workflow's rollout replaces with a JSON patch.
        assert container["name"] == "kserve-container"
        assert container["env"][0] == {
            "name": "STORAGE_URI",
            "value": f"s3://landstack-products/prod/models/{model}/{version}/",
        }
        assert _env(container)["LANDSTACK_MODEL_SERVER_MODEL_NAME"]["value"] == model
        assert isvc["metadata"]["annotations"]["landstack.io/model-version"] == version
        account = accounts[isvc["spec"]["predictor"]["serviceAccountName"]]
        assert account["secrets"] == [{"name": "landstack-kserve-s3"}]  # the storage initializer's S3
        assert account["automountServiceAccountToken"] is False


def test_a_model_server_needs_a_concrete_version(helm: str) -> None:
    for version in ("", "latest"):
        proc = subprocess.run(
            [helm, "template", "rel", str(CHART), "--set", "modelServers.unet.enabled=true",
             "--set", f"modelServers.unet.model.version={version}"],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert proc.returncode != 0, version
        assert "modelServers.unet.model.version: set a registered version of unet-imd" in proc.stderr
        assert "cannot follow the registry's 'latest' pointer" in proc.stderr


def test_workflow_rbac_is_least_privilege(render: Any) -> None:
    docs = render()
    role = _one(docs, "Role", "workflows")
    grants = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert ("argoproj.io", "workflows", "create") in grants
    assert ("serving.kserve.io", "inferenceservices", "patch") in grants
    assert not [g for g in grants if "*" in g]
    assert {g[0] for g in grants} <= {"argoproj.io", "serving.kserve.io"}
    assert not {v for *_, v in grants} & {"delete", "deletecollection", "escalate", "bind", "impersonate"}
    binding = _one(docs, "RoleBinding", "workflows")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = binding["subjects"][0]["name"]
    for wf in (d for d in docs if d["kind"] in ARGO_KINDS):
        assert _pod_specs(wf)[0]["serviceAccountName"] == account
    for doc in docs:
        for spec in _pod_specs(doc):
            if doc["kind"] not in ARGO_KINDS:
                assert spec.get("automountServiceAccountToken") is False, doc["metadata"]["name"]


def test_network_policies_deny_by_default_and_allow_the_needed_paths(render: Any) -> None:
    docs = render(*SERVE_ALL)
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    deny = policies["rel-landstack-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    assert deny["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "rel"
    api = policies["rel-landstack-stac-api"]
    sources = api["ingress"][0]["from"]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} in [
        s.get("namespaceSelector", {}).get("matchLabels") for s in sources
    ]
    assert (
        api["egress"][0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "postgres"
    )
    db = policies["rel-landstack-postgres"]
    allowed = {
        s["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for s in db["ingress"][0]["from"]
    }
    assert allowed == {"stac-api", "pgstac-migrate", "tiler"}
    tiler = policies["rel-landstack-tiler"]
    assert tiler["ingress"] == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert tiler["egress"][0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "postgres"
    )
    assert {p["port"] for p in tiler["egress"][1]["ports"]} == {443, 9000}  # the object store (COGs)
    wf = policies["rel-landstack-workflows"]
    targets = json.dumps(wf["egress"])
    assert "stac-api" in targets and "serving.kserve.io/inferenceservice" in targets and "443" in targets
    prod = {
        d["metadata"]["name"]: d["spec"]
        for d in render("-f", str(CHART / "values-production.yaml"))
        if d["kind"] == "NetworkPolicy"
    }
    assert prod["rel-landstack-stac-api"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    assert prod["rel-landstack-tiler"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]


def test_values_schema_rejects_bad_values(helm: str) -> None:
    for setting, word in (
        ("stacApi.replicas=-1", "replicas"),
        ("stacApi.bogus=1", "bogus"),
        ("tiler.bogus=1", "bogus"),
        ("tiler.ingress.tlsSecret=Bad_Name", "tlsSecret"),
        ("modelServers.unet.canaryTrafficPercent=150", "canaryTrafficPercent"),
        ("modelServers.unet.model.version=../x", "version"),
        ("modelServers.unet.model.existingSecret=Bad_Name", "existingSecret"),
        ("global.objectStore.url=bucket/prefix", "url"),
        ("database.existingSecret=Bad_Name", "existingSecret"),
    ):
        proc = subprocess.run(
            [helm, "template", "rel", str(CHART), "--set", setting], capture_output=True, text=True
        )
        assert proc.returncode != 0 and word in proc.stderr, (setting, proc.stderr)


def test_notes_tell_how_to_reach_the_api_and_the_first_search(helm: str) -> None:
    proc = subprocess.run(
        [helm, "install", "rel", str(CHART), "--dry-run=client", "--namespace", "landstack"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "port-forward svc/rel-landstack-stac-api 8080:8080" in notes
    assert "/search" in notes and "clcplus-backbone-ras" in notes
    assert "port-forward svc/rel-landstack-tiler 8081:8080" in notes and "/map" in notes
