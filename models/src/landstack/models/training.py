"""The training loop: Adam with a cyclic learning rate, early stopping, class weighting.

Data sets here are training samples (tens of thousands of pixels or a few thousand patches), so
they are held as tensors; batches are drawn by index.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from landstack.models.runtime import configure_threads, seed_everything, select_device

IGNORE_INDEX = -100


@dataclass
class TrainConfig:
    """Knobs of one fit; defaults follow Pelletier et al. 2019 (Adam 1e-3, batch 32)."""

    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    base_lr_ratio: float = 0.1
    cycle_epochs: int = 4
    weight_decay: float = 1e-5
    patience: int = 15
    val_fraction: float = 0.1
    class_weighting: bool = True
    augment: bool = True
    seed: int = 0
    threads: int | None = None
    device: str | None = None
    log: Callable[[str], None] | None = None


@dataclass
class FitHistory:
    """What happened during a fit."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(self.epochs_run, 1)


def class_weights(index_labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes); rare classes count as much as common ones."""
    counts = np.bincount(index_labels[index_labels >= 0].ravel(), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    present = w > 0
    w[present] = np.clip(w[present] / w[present].mean(), 0.05, 20.0)
    return torch.tensor(w, dtype=torch.float32)


def masked_mse(scale: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MSE in units of `scale`, ignoring NaN targets (no-data pixels)."""

    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = torch.isfinite(target)
        if not bool(valid.any()):
            return pred.sum() * 0.0
        diff = (pred[valid] - target[valid]) / scale
        return (diff * diff).mean()

    return loss


def dihedral(x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the 8 flips/rotations of a patch batch, applied alike to inputs and targets."""
    if k >= 4:
        x, y = torch.flip(x, dims=(-1,)), torch.flip(y, dims=(-1,))
    r = k % 4
    if r:
        x, y = torch.rot90(x, r, dims=(-2, -1)), torch.rot90(y, r, dims=(-2, -1))
    return x, y


def _mean_loss(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            xb, yb = x[s : s + batch], y[s : s + batch]
            total += float(loss_fn(model(xb), yb)) * xb.shape[0]
            n += xb.shape[0]
    return total / max(n, 1)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    hits, n = 0, 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            yb = y[s : s + batch]
            pred = model(x[s : s + batch]).argmax(dim=1)
            valid = yb >= 0
            hits += int((pred[valid] == yb[valid]).sum())
            n += int(valid.sum())
    return hits / max(n, 1)


def fit_module(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_train: np.ndarray,
    y_train: np.ndarray,
    config: TrainConfig,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    patches: bool = False,
    select_by_accuracy: bool = False,
) -> FitHistory:
    """Train `model` in place; with validation data, stop early and keep the best epoch's weights.

    The best epoch is the one with the lowest validation loss, or for classifiers with
    `select_by_accuracy` the highest validation accuracy (loss breaks ties): on samples from
    unseen objects the loss grows with the network's confidence while accuracy still improves.
    """
    configure_threads(config.threads)
    seed_everything(config.seed)
    dev = select_device(config.device)
    model.to(dev)
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)).to(dev)
    yt = torch.from_numpy(np.ascontiguousarray(y_train)).to(dev)
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if has_val:
        xv = torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32)).to(dev)
        yv = torch.from_numpy(np.ascontiguousarray(y_val)).to(dev)
    n = xt.shape[0]
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CyclicLR(
        opt,
        base_lr=config.lr * config.base_lr_ratio,
        max_lr=config.lr,
        step_size_up=max(1, steps_per_epoch * config.cycle_epochs // 2),
        mode="triangular2",
        cycle_momentum=False,
    )
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    hist = FitHistory()
    best_state, since_best = None, 0
    best_key: tuple[float, float] = (math.inf, math.inf)
    t0 = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=gen).to(dev)
        running = 0.0
        for s in range(0, n, config.batch_size):
            idx = order[s : s + config.batch_size]
            if idx.numel() < 2:  # batch norm needs two samples
                continue
            xb, yb = xt[idx], yt[idx]
            if patches and config.augment:
                xb, yb = dihedral(xb, yb, int(torch.randint(0, 8, (1,), generator=gen)))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach()) * idx.numel()
        hist.train_loss.append(running / n)
        if has_val:
            v = _mean_loss(model, loss_fn, xv, yv, max(config.batch_size, 256))
            hist.val_loss.append(v)
            acc = _accuracy(model, xv, yv, max(config.batch_size, 256)) if select_by_accuracy else 0.0
            key = (-acc, v)
            if key[0] < best_key[0] - 1e-9 or (key[0] <= best_key[0] + 1e-9 and v < best_key[1] - 1e-6):
                best_key, since_best, hist.best_epoch = key, 0, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
        else:
            hist.best_epoch = epoch + 1
        if config.log:
            msg = f"epoch {epoch + 1}/{config.epochs} loss {hist.train_loss[-1]:.4f}"
            config.log(msg + (f" val {hist.val_loss[-1]:.4f}" if has_val else ""))
        if has_val and since_best >= config.patience:
            break
    hist.seconds = time.perf_counter() - t0
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist
