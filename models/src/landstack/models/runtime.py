"""Where tensors live: CUDA when available, otherwise the CPU with a bounded thread count."""

from __future__ import annotations

import random

import numpy as np
import torch


def select_device(prefer: str | None = None) -> torch.device:
    """`prefer` ("cpu", "cuda") wins when given; otherwise CUDA if available, else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads(threads: int | None) -> None:
    """Cap intra-op CPU threads; machines are shared, so never default to every core."""
    if threads is not None and threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Make a training run repeatable (weights, shuffling, augmentation)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
