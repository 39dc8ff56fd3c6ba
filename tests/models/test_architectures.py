"""Architectures, the model file (weights + metadata) and the inference API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landstack.models import (
    InputShapeError,
    ModelFileError,
    inference_module,
    load_model,
    predict_proba,
    save_model,
)
from landstack.models.fitting import fit_patch_model, fit_tempcnn
from landstack.models.impervious import ImperviousCNN
from landstack.models.modelfile import predict_classes, predict_values
from landstack.models.patches import PatchSet
from landstack.models.tables import table_from_frame
from landstack.models.tempcnn import TempCNN
from landstack.models.training import TrainConfig
from landstack.models.unet import UNet

from .conftest import synthetic_imd_patches, synthetic_table

torch.set_num_threads(1)
FAST = TrainConfig(epochs=2, threads=1, batch_size=32)


@torch.no_grad()
def test_output_shapes() -> None:
    assert TempCNN(13, 54, 11)(torch.randn(5, 13, 54)).shape == (5, 11)
    unet = UNet(6, 2, depth=2, width=8)
    y = unet(torch.randn(2, 6, 32, 32))
    assert y.shape == (2, 2, 32, 32)
    assert float(y.min()) >= 0 and float(y.max()) <= 100
    assert ImperviousCNN(6, 4, width=8)(torch.randn(2, 6, 30, 30)).shape == (2, 4, 30, 30)


def test_tempcnn_file_round_trip_carries_metadata(tmp_path: Path) -> None:
    table = table_from_frame(synthetic_table(n_per_class=10, time_steps=6))
    trained = fit_tempcnn(table, FAST, {"filters": 8, "dense": 16}, name="lc", version="1")
    path = save_model(tmp_path / "model.pt", trained.model, trained.metadata)
    model, meta = load_model(path)
    assert meta["architecture"] == "TempCNN"
    assert meta["input"]["features"] == ["B04", "B08", "B11", "NDVI"]
    assert meta["input"]["time_steps"] == 6
    assert len(meta["input"]["norm"]["mean"]) == 4
    assert [c["value"] for c in meta["output"]["classes"]] == list(range(1, 12))
    assert meta["output"]["classes"][9]["name"] == "Water"
    # normalisation lives in the weights: the loaded model reproduces the trained one on raw input
    assert isinstance(model, TempCNN)
    np.testing.assert_allclose(model.normalise.mean.numpy(), meta["input"]["norm"]["mean"], rtol=1e-6)
    p1 = predict_proba(trained.model, trained.metadata, table.x)
    p2 = predict_proba(model, meta, table.x)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert p2.shape == (len(table), 11)
    np.testing.assert_allclose(p2.sum(axis=1), 1.0, atol=1e-5)
    assert set(np.unique(predict_classes(model, meta, table.x))) <= set(range(1, 12))
    # tensor in, probabilities out, for serving
    probs = inference_module(model, meta)(torch.from_numpy(table.x[:3]))
    np.testing.assert_allclose(probs.detach().numpy(), p2[:3], atol=1e-5)
    # loading through a URL works the same
    _, meta_url = load_model(path.resolve().as_uri())
    assert meta_url == meta


def test_missing_values_do_not_break_inference(tmp_path: Path) -> None:
    table = table_from_frame(synthetic_table(n_per_class=5, time_steps=6))
    trained = fit_tempcnn(table, FAST, {"filters": 8, "dense": 16})
    x = table.x.copy()
    x[:, :, 2] = np.nan
    assert np.isfinite(predict_proba(trained.model, trained.metadata, x)).all()


def test_wrong_input_shape_and_bad_files(tmp_path: Path) -> None:
    table = table_from_frame(synthetic_table(n_per_class=5, time_steps=6))
    trained = fit_tempcnn(table, FAST, {"filters": 8, "dense": 16})
    with pytest.raises(InputShapeError, match=r"expects input \(N, 4, 6\)"):
        predict_proba(trained.model, trained.metadata, np.zeros((2, 4, 7), np.float32))
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a landstack model file"):
        load_model(tmp_path / "junk.pt")


def test_unet_ensemble_round_trip(tmp_path: Path) -> None:
    x, y = synthetic_imd_patches(n=8, size=16)
    ps = PatchSet(x, y, ["q10", "q50", "q90", "ndvi"], ["imd"])
    trained = fit_patch_model(ps, FAST, "UNet", {"depth": 2, "width": 4}, ensemble_size=2)
    assert trained.metadata["ensemble_size"] == 2
    path = save_model(tmp_path / "unet.pt", trained.model, trained.metadata)
    model, meta = load_model(path)
    out = predict_values(model, meta, x)
    assert out.shape == (8, 1, 16, 16)
    np.testing.assert_allclose(out, predict_values(trained.model, trained.metadata, x), atol=1e-4)
    with pytest.raises(InputShapeError, match="multiples of 4"):
        predict_values(model, meta, np.zeros((1, 4, 18, 18), np.float32))
    with pytest.raises(ModelFileError, match="regression model"):
        predict_proba(model, meta, x)
