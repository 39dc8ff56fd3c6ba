"""One file per model: ``torch.save({"state_dict", "metadata"})``.

The metadata carries everything needed to use the weights: architecture name and
hyperparameters, input features / channels, time steps, the per-feature normalisation, class
codes and names (or regression targets and their scale), output semantics and version. Every
consumer (pipeline, model server) calls :func:`load_model` and reads it from there.

Metadata keys: ``architecture`` ("TempCNN", "UNet", "ImperviousCNN"), ``hyperparameters``,
``task`` ("classification", "segmentation", "regression"), ``input`` {``features``,
``time_steps`` (TempCNN), ``dim_order``, ``norm`` {``mean``, ``std``}}, ``output`` {``classes``
[{value, name}] or ``targets`` [names] + ``scale``, ``semantics``}, ``ensemble_size``, ``name``,
``version``, ``created``, ``framework``, ``framework_version``, ``training``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from landstack.models.errors import InputShapeError, ModelFileError
from landstack.models.impervious import ImperviousCNN
from landstack.models.layers import Ensemble
from landstack.models.tempcnn import TempCNN
from landstack.models.unet import UNet
from landstack.storage import S3Options, StoreError, open_url

FORMAT_VERSION = 1


def _build_single(metadata: dict[str, Any]) -> nn.Module:
    arch = metadata.get("architecture")
    hp = dict(metadata.get("hyperparameters", {}))
    n_in = len(metadata["input"]["features"])
    out = metadata["output"]
    if arch == "TempCNN":
        return TempCNN(n_in, int(metadata["input"]["time_steps"]), len(out["classes"]), **hp)
    if arch == "UNet":
        n_out = len(out["classes"]) if metadata["task"] != "regression" else len(out["targets"])
        return UNet(n_in, n_out, task=metadata["task"], scale=float(out.get("scale", 100.0)), **hp)
    if arch == "ImperviousCNN":
        return ImperviousCNN(n_in, len(out["classes"]), **hp)
    raise ModelFileError(
        f"unknown architecture {arch!r} in model metadata; expected TempCNN, UNet or ImperviousCNN"
    )


def build_model(metadata: dict[str, Any]) -> nn.Module:
    """An untrained module (or ensemble of `ensemble_size` members) described by `metadata`."""
    try:
        k = int(metadata.get("ensemble_size", 1))
        if k > 1:
            return Ensemble([_build_single(metadata) for _ in range(k)])
        return _build_single(metadata)
    except (KeyError, TypeError) as e:
        raise ModelFileError(
            f"model metadata is incomplete or malformed ({e}); re-train or re-export the model"
        ) from e


def model_bytes(model: nn.Module, metadata: dict[str, Any]) -> bytes:
    """The serialised model file."""
    buf = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format_version": FORMAT_VERSION, "state_dict": state, "metadata": metadata}, buf)
    return buf.getvalue()


def save_model(path: str | Path, model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write the model file atomically (temp file then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(model_bytes(model, metadata))
    tmp.replace(p)
    return p


def model_from_bytes(data: bytes, name: str = "model") -> tuple[nn.Module, dict[str, Any]]:
    """Module (eval mode, CPU) and metadata from the bytes of a model file."""
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(
            f"{name} is not a landstack model file ({e}); point at a model.pt written by training"
        ) from e
    if not isinstance(blob, dict) or "state_dict" not in blob or "metadata" not in blob:
        raise ModelFileError(f"{name} has no state_dict/metadata; point at a model.pt written by training")
    metadata = blob["metadata"]
    model = build_model(metadata)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise ModelFileError(f"{name}: weights do not match the architecture in its metadata: {e}") from e
    model.eval()
    return model, metadata


def load_model(url_or_path: str | Path, s3: S3Options | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model file from a local path, file:// or s3:// URL (S3 endpoint and credentials in `s3`)."""
    url = str(url_or_path)
    try:
        with open_url(url, "rb", s3) as f:
            data = f.read()
    except StoreError as e:
        raise ModelFileError(f"cannot read model file {url}: {e}") from e
    except FileNotFoundError as e:
        raise ModelFileError(f"model file {url} does not exist") from e
    except OSError as e:
        raise ModelFileError(f"cannot read model file {url}: {e}") from e
    return model_from_bytes(data, url)


def check_input(metadata: dict[str, Any], x: np.ndarray) -> None:
    """Raise InputShapeError unless `x` has the shape the model in `metadata` takes (batch free)."""
    inp = metadata["input"]
    n_feat = len(inp["features"])
    if metadata["architecture"] == "TempCNN":
        want = (n_feat, int(inp["time_steps"]))
        if x.ndim != 3 or tuple(x.shape[1:]) != want:
            raise InputShapeError(
                f"model {metadata.get('name', '')!r} expects input (N, {want[0]}, {want[1]}) "
                f"(features {inp['features'][:3]}..., time steps {want[1]}), got {tuple(x.shape)}"
            )
    elif x.ndim != 4 or x.shape[1] != n_feat:
        raise InputShapeError(
            f"model {metadata.get('name', '')!r} expects input (N, {n_feat}, H, W), got {tuple(x.shape)}"
        )
    if metadata["architecture"] == "UNet":
        m = 2 ** int(metadata["hyperparameters"].get("depth", 3))
        if x.shape[2] % m or x.shape[3] % m:
            raise InputShapeError(
                f"U-Net input height and width must be multiples of {m}; got {tuple(x.shape)}"
            )


@torch.no_grad()
def forward_numpy(
    model: nn.Module,
    metadata: dict[str, Any],
    x: np.ndarray,
    batch_size: int = 4096,
    device: str | None = None,
) -> np.ndarray:
    """Raw module output for a numpy batch, computed in chunks of `batch_size` (bounded memory)."""
    check_input(metadata, x)
    dev = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    outs = []
    for start in range(0, x.shape[0], batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)).to(
            dev
        )
        outs.append(model(chunk).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def predict_proba(
    model: nn.Module, metadata: dict[str, Any], x: np.ndarray, batch_size: int = 4096
) -> np.ndarray:
    """Class probabilities: (N, F, T) -> (N, C) for TempCNN, (N, C_in, H, W) -> (N, C, H, W) for segmenters.

    Class i is ``metadata["output"]["classes"][i]["value"]``.
    """
    if metadata.get("task") == "regression":
        raise ModelFileError(f"model {metadata.get('name', '')!r} is a regression model; use predict_values")
    logits = forward_numpy(model, metadata, x, batch_size)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def predict_classes(
    model: nn.Module, metadata: dict[str, Any], x: np.ndarray, batch_size: int = 4096
) -> np.ndarray:
    """Class codes (not indices) of the most probable class."""
    codes = np.array([c["value"] for c in metadata["output"]["classes"]])
    return codes[np.argmax(predict_proba(model, metadata, x, batch_size), axis=1)]


def predict_values(
    model: nn.Module, metadata: dict[str, Any], x: np.ndarray, batch_size: int = 16
) -> np.ndarray:
    """Regression output (N, K, H, W) in target units (0..scale)."""
    if metadata.get("task") != "regression":
        raise ModelFileError(f"model {metadata.get('name', '')!r} is a classifier; use predict_proba")
    return forward_numpy(model, metadata, x, batch_size)


class _Probabilities(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def inference_module(model: nn.Module, metadata: dict[str, Any]) -> nn.Module:
    """Tensor-in/tensor-out module for serving: probabilities for classifiers, values for regression."""
    if metadata.get("task") == "regression":
        return model.eval()
    return _Probabilities(model).eval()


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
