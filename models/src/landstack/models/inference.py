"""The inference form of a model, built once at load time, and how a batch runs through it.

Both the in-process backend of the predict step and the model server run models through
:class:`InferenceRunner`: batch norm folded into the convolutions, eval mode, probabilities for
classifiers (values for regression), weights on the device.

Why the CPU path looks the way it does (TempCNN, 12 x 54 inputs, 2-core AMD EPYC, torch 2.13):

- a forward pass is ~95 % convolutions (oneDNN) and the dense layer (MKL). oneDNN runs a
  convolution on channels-last (N, C, 1, T) tensors at ~80 GFLOP/s per core, against ~55 for the
  same Conv1d on (N, C, T) (a layout reorder around every call) and ~60 for MKL's 2048² matmul; the
  dense layer as a (1, T) convolution over the same channels-last tensor runs at ~73 against ~55
  for MKL's linear. So on CPU a folded TempCNN becomes :class:`ChannelsLastTempCNN`;
- one thread runs the channels-last model at 110-125 % of the single-thread matmul rate on
  chunks of 128-1,024 pixels (flat from 192 to 768); the Conv1d model needed chunks of 64-256
  pixels to stay in the caches (85-98 %) and fell to 65-70 % at 1,024;
- two intra-op threads run every op in lockstep: as soon as another process takes one core both
  wait, and on a loaded machine the throughput dropped to a third or less. So a TempCNN batch is cut
  into cache-sized chunks and `workers` threads each run whole chunks single-threaded (data
  parallel): under load each core progresses on its own.

Intra-op threads are a process-wide torch setting: while the workers run it is 1 and afterwards
the previous value again. Worker threads pin their own OpenMP team size to 1 on first use, so they
stay single-threaded; runs on CPU take turns (one lock per process).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

from landstack.models.folding import fold_batchnorm
from landstack.models.layers import Ensemble, Standardise
from landstack.models.modelfile import inference_module
from landstack.models.tempcnn import TempCNN

# Pixels per chunk (one worker task) for a TempCNN on CPU: big enough to amortise the per-call
# weight reorders of oneDNN (the dense kernel is 3.5 MB), small enough that a layer's activations
# (15 KB a pixel at 64 filters) stay in L2 + L3 and that the workers finish a batch together.
TEMPCNN_CPU_CHUNK = 512

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CPU_LOCK = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    # one pool per size for the whole process: several served models share the same threads
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="landstack-infer")
    return _POOLS[workers]


@contextlib.contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    prev = torch.get_num_threads()
    if prev == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _conv2d_channels_last(weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> nn.Conv2d:
    """A (1, k) Conv2d holding a Conv1d's or a Linear's (reshaped) weights, stored channels-last."""
    out_ch, in_ch, k = weight.shape
    conv = nn.Conv2d(in_ch, out_ch, (1, k), padding=(0, padding), bias=bias is not None)
    w = weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
    conv.weight = nn.Parameter(w, requires_grad=False)
    if bias is not None:
        conv.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
    return conv.eval()


class ChannelsLastTempCNN(nn.Module):
    """A batch-norm-folded TempCNN computed with 2-D convolutions on channels-last tensors.

    Same function as the TempCNN it is built from (eval mode): each Conv1d + ReLU becomes a (1, k)
    Conv2d + ReLU on an (N, C, 1, T) channels-last tensor, and flatten + the first dense layer
    becomes a (1, T) Conv2d over the last one (no flatten copy, no layout reorder).
    """

    def __init__(
        self, normalise: Standardise, convs: list[nn.Conv1d], dense: nn.Linear, out: nn.Linear
    ) -> None:
        super().__init__()
        self.normalise = normalise
        self.convs = nn.ModuleList(_conv2d_channels_last(c.weight, c.bias, int(c.padding[0])) for c in convs)
        filters, steps = convs[-1].out_channels, dense.in_features // convs[-1].out_channels
        # Flatten orders the dense inputs channel-major (c * T + t): exactly a (C, 1, T) kernel
        self.dense = _conv2d_channels_last(
            dense.weight.view(dense.out_features, filters, steps), dense.bias, 0
        )
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.normalise(x).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            z = torch.relu_(conv(z))
        return self.out(torch.relu_(self.dense(z)).flatten(1))

    @classmethod
    def from_folded(cls, model: nn.Module) -> ChannelsLastTempCNN | None:
        """The channels-last form of a folded TempCNN; None for any other layer arrangement."""
        if not isinstance(model, TempCNN):
            return None
        convs = [m for m in model.convs if isinstance(m, nn.Conv1d)]
        inert = (nn.Identity, nn.Dropout, nn.Flatten)
        conv_ok = all(isinstance(m, (nn.Conv1d, nn.ReLU, *inert)) for m in model.convs) and all(
            c.stride == (1,)
            and c.dilation == (1,)
            and c.groups == 1
            and c.padding_mode == "zeros"
            and c.padding == (c.kernel_size[0] // 2,)
            for c in convs
        )
        kinds = [type(m) for m in model.head if not isinstance(m, inert)]
        linears = [m for m in model.head if isinstance(m, nn.Linear)]
        relus = sum(isinstance(m, nn.ReLU) for m in model.convs)
        if not (convs and conv_ok and relus == len(convs) and kinds == [nn.Linear, nn.ReLU, nn.Linear]):
            return None
        if linears[0].in_features % convs[-1].out_channels:
            return None
        return cls(model.normalise, convs, linears[0], linears[1])


def _cpu_form(model: nn.Module) -> nn.Module:
    """The fastest CPU form of a folded model: channels-last for TempCNNs (and their ensembles)."""
    if isinstance(model, Ensemble):
        members = [ChannelsLastTempCNN.from_folded(m) for m in model.members]
        if all(m is not None for m in members):
            return Ensemble([m for m in members if m is not None]).eval()
        return model
    return ChannelsLastTempCNN.from_folded(model) or model


class InferenceRunner:
    """A model ready for inference on `device`; call it with an (N, ...) batch on that device.

    - `fold`: merge batch norm into the preceding convolution/linear layer (same outputs within
      float rounding);
    - `chunk_size`: samples per forward pass; default TEMPCNN_CPU_CHUNK for a TempCNN on CPU,
      otherwise the whole batch (callers bound it);
    - `workers`: CPU threads running chunks side by side, each single-threaded; default the
      intra-op thread count for a TempCNN on CPU, 1 (plain intra-op parallelism) otherwise;
    - `autocast`: "bf16" / "fp16" run under autocast on CUDA; ignored on CPU.
    """

    def __init__(
        self,
        model: nn.Module,
        metadata: dict[str, Any],
        device: torch.device | str = "cpu",
        *,
        fold: bool = True,
        chunk_size: int | None = None,
        workers: int | None = None,
        autocast: str = "off",
    ) -> None:
        self.device = torch.device(device)
        self.metadata = metadata
        self.folded = 0
        if fold:
            model, self.folded = fold_batchnorm(model)
        cpu_tempcnn = self.device.type == "cpu" and metadata.get("architecture") == "TempCNN"
        if cpu_tempcnn and fold:
            model = _cpu_form(model)
        self.module = inference_module(model, metadata).to(self.device).eval()
        self.chunk_size = max(1, chunk_size or (TEMPCNN_CPU_CHUNK if cpu_tempcnn else 1 << 62))
        default_workers = torch.get_num_threads() if cpu_tempcnn else 1
        self.workers = max(1, workers or default_workers) if self.device.type == "cpu" else 1
        self.autocast = _AUTOCAST.get(autocast) if self.device.type == "cuda" else None

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # inference mode and autocast are thread-local: every worker enters them itself
        with torch.inference_mode():
            if self.autocast is not None:
                with torch.autocast(self.device.type, dtype=self.autocast):
                    return self.module(x).float()
            return self.module(x.float()).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """float32 outputs for a float16/float32 batch already on the runner's device."""
        n = int(x.shape[0])
        if n == 0:
            return self._forward(x)
        # a batch smaller than workers x chunk is split evenly, so that no worker idles
        step = min(self.chunk_size, -(-n // self.workers))
        starts = range(0, n, step)
        if self.workers == 1 or len(starts) == 1:
            outs = [self._forward(x[s : s + step]) for s in starts]
        else:
            with _CPU_LOCK, _intra_op_threads(1):
                outs = list(_pool(self.workers).map(lambda s: self._forward(x[s : s + step]), starts))
        if len(outs) == 1:
            return outs[0]
        with torch.inference_mode():
            return torch.cat(outs)
