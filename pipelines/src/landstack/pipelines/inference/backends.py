"""Where a model runs for the predict step: in this process (torch, CUDA when available) or behind
a KServe model server (the open inference protocol v2).

Both read the model's metadata from the registry (features, time steps, normalisation, classes),
fill missing feature values with the model's own feature means (what its standardisation maps a
gap to, and what the servers require: they refuse NaN), and return float32 arrays: class
probabilities for classifiers, values for regression models. The two give the same numbers within
float tolerance.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from landstack.pipelines.errors import PipelineError
from landstack.storage import S3Options


@dataclass(frozen=True)
class ModelInfo:
    """A registered model as the predict step sees it."""

    name: str
    version: str
    metadata: dict[str, Any]

    @property
    def architecture(self) -> str:
        return str(self.metadata["architecture"])

    @property
    def is_patch_model(self) -> bool:
        return self.architecture in ("UNet", "ImperviousCNN")

    @property
    def features(self) -> list[str]:
        return list(self.metadata["input"]["features"])

    @property
    def pooling(self) -> int:
        """The multiple a patch's height and width must have."""
        if self.architecture == "UNet":
            return 2 ** int(self.metadata.get("hyperparameters", {}).get("depth", 3))
        return 1

    @property
    def outputs(self) -> list[str]:
        out = self.metadata["output"]
        if self.metadata.get("task") == "regression":
            return [str(t) for t in out["targets"]]
        return [str(c["value"]) for c in out["classes"]]

    @property
    def feature_means(self) -> np.ndarray:
        """The training mean of each input feature (what a missing value is filled with)."""
        return np.asarray(
            self.metadata["input"].get("norm", {}).get("mean") or [0.0] * len(self.features), np.float32
        )

    def fill_missing(self, x: np.ndarray) -> np.ndarray:
        """NaN → the feature's training mean, per feature (axis 1)."""
        mean = self.feature_means
        if not np.isnan(x).any():
            return x
        shape = [1, mean.size] + [1] * (x.ndim - 2)
        return np.where(np.isnan(x), mean.reshape(shape), x).astype(np.float32)


class Backend(Protocol):
    """Runs registered models on numpy batches."""

    def model(self, name: str, version: str = "latest") -> ModelInfo: ...

    def predict(self, model: ModelInfo, x: np.ndarray) -> np.ndarray: ...


class LocalBackend:
    """Models loaded once from the registry and run in this process (CUDA when available)."""

    def __init__(
        self,
        registry_url: str,
        s3: S3Options | None = None,
        device: str | None = None,
        batch_size: int = 8192,
    ) -> None:
        import torch

        self.registry_url = registry_url
        self.s3 = s3
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self._modules: dict[tuple[str, str], Any] = {}
        self._infos: dict[tuple[str, str], ModelInfo] = {}
        self._lock = threading.Lock()

    def model(self, name: str, version: str = "latest") -> ModelInfo:
        from landstack.models.errors import ModelError
        from landstack.models.inference import InferenceRunner
        from landstack.models.registry import latest_version, load_registered

        with self._lock:
            try:
                resolved = (
                    latest_version(self.registry_url, name, self.s3) if version == "latest" else version
                )
                key = (name, resolved)
                if key not in self._infos:
                    module, metadata = load_registered(self.registry_url, name, resolved, self.s3)
                    # the inference form the model server runs too: batch norm folded, on CPU
                    # cache-sized chunks on single-threaded workers
                    self._modules[key] = InferenceRunner(module, metadata, self.device)
                    self._infos[key] = ModelInfo(name, resolved, metadata)
            except ModelError as e:
                raise PipelineError(f"cannot load model {name!r} version {version!r}: {e}") from e
            return self._infos[key]

    def predict(self, model: ModelInfo, x: Any) -> np.ndarray:
        """Outputs for a numpy batch, or a torch tensor already on the device (features_torch)."""
        import torch

        runner = self._modules[(model.name, model.version)]
        if isinstance(x, torch.Tensor):  # features computed on the device stay there
            mean = torch.from_numpy(model.feature_means).to(x.device)
            x = torch.where(torch.isnan(x), mean.reshape([1, -1] + [1] * (x.ndim - 2)), x)
        else:
            x = model.fill_missing(x)
        batch = (
            self.batch_size
            if not model.is_patch_model
            else max(1, self.batch_size // (x.shape[-1] * x.shape[-2]))
        )
        outs = []
        for start in range(0, x.shape[0], batch):
            part = x[start : start + batch]
            t = (
                part.to(self.device, torch.float32)
                if isinstance(part, torch.Tensor)
                else torch.from_numpy(np.ascontiguousarray(part, np.float32)).to(self.device)
            )
            outs.append(runner(t).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, len(model.outputs)), np.float32)


def model_ref(ref: str) -> tuple[str, str]:
    """`name[:version]` → (name, version)."""
    name, _, version = ref.partition(":")
    return name, version or "latest"
