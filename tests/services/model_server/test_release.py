"""One model server for a whole release: every production unit's model and the fallback, each under
its registry name, from one folder (`--model_dir`) as KServe's storage initializer leaves an
InferenceService's release storage URI (``releases/<name>/<release>/``) in /mnt/models.

Three tiny TempCNNs with different weights are registered as ``tempcnn-u1``, ``tempcnn-u2`` (a second
version) and ``tempcnn-fallback``, released, the release folder copied read-only, and a real server
process started on it answers each name with that model's own probabilities.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from landstack.model_server.errors import ModelSourceError
from landstack.model_server.process import ServedProcess, serve
from landstack.model_server.settings import ModelServerSettings
from landstack.model_server.sources import ModelRef, model_refs
from landstack.models.errors import RegistryError
from landstack.models.modelfile import inference_module
from landstack.models.registry import register_model
from landstack.models.releases import Member, register_release, release_id
from landstack.storage.layout import RELEASE_MANIFEST

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models as tm

# unit model -> (registered version, weight seed)
MEMBERS = {"tempcnn-u1": ("0.0.1", 1), "tempcnn-u2": ("0.0.2", 2), "tempcnn-fallback": ("0.0.1", 3)}
Models = dict[str, tuple[torch.nn.Module, dict[str, Any]]]


def _register_units(root: Path) -> Models:
    models: Models = {}
    for name, (version, seed) in MEMBERS.items():
        model, meta = tm.build(tm.TEMPCNN, seed=seed)
        meta = {**meta, "name": name, "version": version}
        register_model(root.as_uri(), model, meta)
        models[name] = (model, meta)
    return models


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Models, str]:
    """A registry with the three unit models and their release; the release id."""
    root = tmp_path_factory.mktemp("registry")
    models = _register_units(root)
    rel = register_release(root.as_uri(), "tempcnn", [Member(n, v) for n, (v, _) in MEMBERS.items()])
    return root, models, rel.version


def _mount(root: Path, release: str, target: Path) -> Path:
    """What the storage initializer does: copy the release folder, read-only like KServe's mount."""
    shutil.copytree(root / "releases" / "tempcnn" / release, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return target


def test_release_folder_holds_every_member_and_the_manifest(released: tuple[Path, Models, str]) -> None:
    root, _, release = released
    folder = root / "releases" / "tempcnn" / release
    assert release == release_id([Member(n, v) for n, (v, _) in reversed(MEMBERS.items())])  # order-free
    assert sorted(p.name for p in folder.iterdir()) == sorted([*MEMBERS, RELEASE_MANIFEST])
    for name, (version, _) in MEMBERS.items():
        source = root / "models" / name / version
        assert (folder / name / "model.pt").read_bytes() == (source / "model.pt").read_bytes()
        assert (folder / name / "item.json").is_file()
    # registering the same members again gives the same folder, untouched
    before = (folder / RELEASE_MANIFEST).read_text()
    again = register_release(root.as_uri(), "tempcnn", [Member(n, v) for n, (v, _) in MEMBERS.items()])
    assert again.version == release and again.url == f"{folder.as_uri()}/"
    assert (folder / RELEASE_MANIFEST).read_text() == before


def test_a_member_that_is_not_registered_is_refused(released: tuple[Path, Models, str]) -> None:
    root, _, _ = released
    with pytest.raises(RegistryError, match=r"models/tempcnn-u3/0\.0\.1/ holds no model\.pt; register"):
        register_release(root.as_uri(), "tempcnn", [Member("tempcnn-u3", "0.0.1")])
    assert not list((root / "releases" / "tempcnn").glob(f"{release_id([Member('tempcnn-u3', '0.0.1')])}*"))
    with pytest.raises(RegistryError, match="lists model 'tempcnn-u1' twice"):
        register_release(
            root.as_uri(), "tempcnn", [Member("tempcnn-u1", "0.0.1"), Member("tempcnn-u1", "0.0.2")]
        )


def test_refs_name_every_member_and_check_the_release_name(
    released: tuple[Path, Models, str], tmp_path: Path
) -> None:
    root, _, release = released
    folder = _mount(root, release, tmp_path / "models")
    refs = model_refs(ModelServerSettings(model_dir=str(folder), model_name="tempcnn"))
    assert refs == [ModelRef(n, v, folder=str(folder / n)) for n, (v, _) in MEMBERS.items()]
    with pytest.raises(
        ModelSourceError, match=r"release .* of 'tempcnn', but the settings ask for 'unet-imd'"
    ):
        model_refs(ModelServerSettings(model_dir=str(folder), model_name="unet-imd"))


def test_incomplete_release_folders_are_refused(released: tuple[Path, Models, str], tmp_path: Path) -> None:
    root, _, release = released
    source = root / "releases" / "tempcnn" / release
    no_manifest = tmp_path / "no-manifest"
    shutil.copytree(source, no_manifest, ignore=shutil.ignore_patterns(RELEASE_MANIFEST))
    with pytest.raises(ModelSourceError, match=r"a release folder without its release\.json, copy it again"):
        model_refs(ModelServerSettings(model_dir=str(no_manifest)))
    no_member = tmp_path / "no-member"
    shutil.copytree(source, no_member, ignore=shutil.ignore_patterns("tempcnn-u2"))
    with pytest.raises(ModelSourceError, match=r"lacks the model\.pt of \['tempcnn-u2'\]"):
        model_refs(ModelServerSettings(model_dir=str(no_member)))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(source, corrupt)
    (corrupt / RELEASE_MANIFEST).write_text("{")
    with pytest.raises(ModelSourceError, match=r"is not a release manifest"):
        model_refs(ModelServerSettings(model_dir=str(corrupt)))


@pytest.fixture(scope="module")
def server(
    released: tuple[Path, Models, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedProcess]:
    root, _, release = released
    folder = _mount(root, release, tmp_path_factory.mktemp("mnt") / "models")
    # as the chart's InferenceService starts it: the family's name in env, the folder as --model_dir
    env = {"LANDSTACK_MODEL_SERVER_MODEL_NAME": "tempcnn", "LANDSTACK_MODEL_SERVER_TORCH_THREADS": "1"}
    with serve(env, folder.parent / "server.log", [f"--model_dir={folder}"]) as served:
        yield served


@pytest.mark.integration
def test_the_server_answers_each_member_with_its_own_model(
    server: ServedProcess, released: tuple[Path, Models, str]
) -> None:
    _, models, _ = released
    listed = httpx.get(f"{server.url}/v2/models", timeout=10).json()["models"]
    assert sorted(listed) == sorted(MEMBERS)
    x = np.random.default_rng(0).normal(size=(4, 12, 54)).astype(np.float32)
    body = {
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]
    }
    answers = {}
    for name, (version, _) in MEMBERS.items():
        described = httpx.get(f"{server.url}/v2/models/{name}", timeout=10).json()
        assert described["name"] == name and described["versions"] == [version]
        assert described["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 12, 54]}]
        r = httpx.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=60)
        assert r.status_code == 200, r.text[:500]
        assert r.json()["model_name"] == name and r.json()["model_version"] == version
        out = r.json()["outputs"][0]
        answers[name] = np.asarray(out["data"], np.float32).reshape(out["shape"])
        model, meta = models[name]
        with torch.inference_mode():
            expected = inference_module(model, meta)(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(answers[name], expected, atol=1e-4)
    # three different models, not one answering under three names
    assert not np.allclose(answers["tempcnn-u1"], answers["tempcnn-u2"], atol=1e-4)
    assert not np.allclose(answers["tempcnn-u1"], answers["tempcnn-fallback"], atol=1e-4)
    assert httpx.get(f"{server.url}/v2/models/tempcnn", timeout=10).status_code == 404
