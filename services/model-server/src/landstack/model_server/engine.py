"""The compute side of a served model: weights on the device, batch norm folded, tensor in/out.

One `Engine` per served model, built in `load()` around the library's
:class:`~landstack.models.inference.InferenceRunner` (the same inference form the in-process
backend runs). A forward pass takes a float16/float32 numpy batch and returns float32 (class
probabilities or values), computed in chunks of `chunk_size` samples so memory follows the chunk,
not the request; on CPU the runner splits each chunk again into cache-sized pieces for its
single-threaded workers. On CUDA the batch travels through a pinned host buffer (one fast copy
instead of a pageable one) in its wire dtype and runs under bf16/fp16 autocast. Engines on one
device take turns (one lock per device): two concurrent forward passes would only fight over the
same cores or GPU.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from torch import nn

from landstack.models.inference import InferenceRunner

_LOCKS: dict[str, threading.Lock] = {}


def _device_lock(device: torch.device) -> threading.Lock:
    return _LOCKS.setdefault(str(device), threading.Lock())


def input_shape(metadata: dict[str, Any]) -> list[int]:
    """The input tensor's shape from the model metadata; -1 marks batch and spatial dimensions."""
    n_feat = len(metadata["input"]["features"])
    if metadata["architecture"] == "TempCNN":
        return [-1, n_feat, int(metadata["input"]["time_steps"])]
    return [-1, n_feat, -1, -1]


def output_shape(metadata: dict[str, Any]) -> list[int]:
    """The output tensor's shape: (N, classes) for TempCNN, (N, classes or targets, H, W) otherwise."""
    out = metadata["output"]
    n_out = len(out["targets"]) if metadata.get("task") == "regression" else len(out["classes"])
    if metadata["architecture"] == "TempCNN":
        return [-1, n_out]
    return [-1, n_out, -1, -1]


class Engine:
    """A model's inference module on its device."""

    def __init__(
        self,
        module: nn.Module,
        metadata: dict[str, Any],
        device: torch.device,
        chunk_size: int = 4096,
        fold: bool = True,
        autocast: str = "bf16",
    ) -> None:
        self.metadata = metadata
        self.device = device
        self.chunk_size = max(1, chunk_size)
        self.runner = InferenceRunner(module, metadata, device, fold=fold, autocast=autocast)
        self.module = self.runner.module
        self.folded = self.runner.folded
        self._pinned: torch.Tensor | None = None
        self._lock = _device_lock(device)

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)
        if self.device.type != "cuda":
            return t  # the runner converts float16 to float32 chunk by chunk, in its workers
        if self._pinned is None or self._pinned.numel() < t.numel() or self._pinned.dtype != t.dtype:
            self._pinned = torch.empty(t.numel(), dtype=t.dtype).pin_memory()
        buf = self._pinned[: t.numel()].view(t.shape)
        buf.copy_(t)
        return buf.to(self.device, non_blocking=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """float32 output for an (N, ...) float16/float32 batch."""
        outs: list[np.ndarray] = []
        with self._lock:
            for start in range(0, x.shape[0], self.chunk_size):
                chunk = np.ascontiguousarray(x[start : start + self.chunk_size])
                outs.append(self.runner(self._to_device(chunk)).cpu().numpy())
        return outs[0] if len(outs) == 1 else np.concatenate(outs)
