"""The compute side of a served model: weights on the device, batch norm folded, tensor in/out.

One `Engine` per served model. A forward pass takes a float16/float32 numpy batch and returns
float32 (class probabilities or values), computed in chunks of `chunk_size` samples so memory
follows the chunk, not the request. On CUDA the batch travels through a pinned host buffer (one
fast copy instead of a pageable one) in its wire dtype and runs under bf16/fp16 autocast. Engines
on one device take turns (one lock per device): two concurrent forward passes would only fight
over the same cores or GPU.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np
import torch
from torch import nn

from landstack.models.folding import fold_batchnorm
from landstack.models.modelfile import inference_module

_LOCKS: dict[str, threading.Lock] = {}
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


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
        self.folded = 0
        if fold:
            module, self.folded = fold_batchnorm(module)
        self.module = inference_module(module, metadata).to(device).eval()
        self.autocast = _AUTOCAST.get(autocast) if device.type == "cuda" else None
        self._pinned: torch.Tensor | None = None
        self._lock = _device_lock(device)

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)
        if self.device.type != "cuda":
            return t.float()
        if self._pinned is None or self._pinned.numel() < t.numel() or self._pinned.dtype != t.dtype:
            self._pinned = torch.empty(t.numel(), dtype=t.dtype).pin_memory()
        buf = self._pinned[: t.numel()].view(t.shape)
        buf.copy_(t)
        return buf.to(self.device, non_blocking=True)

    def _context(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """float32 output for an (N, ...) float16/float32 batch."""
        outs: list[np.ndarray] = []
        with self._lock, torch.inference_mode(), self._context():
            for start in range(0, x.shape[0], self.chunk_size):
                chunk = np.ascontiguousarray(x[start : start + self.chunk_size])
                y = self.module(self._to_device(chunk))
                outs.append(y.float().cpu().numpy())
        return outs[0] if len(outs) == 1 else np.concatenate(outs)
