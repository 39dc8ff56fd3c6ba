"""Accuracy assessment: classification (CLCplus targets) and regression metrics, with plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

OA_TARGET = 0.90
OMISSION_TARGET = 0.15
COMMISSION_TARGET = 0.15


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, codes: list[int]) -> np.ndarray:
    """Counts with rows = reference class, columns = predicted class, in the order of `codes`."""
    index = {c: i for i, c in enumerate(codes)}
    k = len(codes)
    ref = np.array([index.get(int(v), -1) for v in reference])
    pred = np.array([index.get(int(v), -1) for v in predicted])
    ok = (ref >= 0) & (pred >= 0)
    return np.bincount(ref[ok] * k + pred[ok], minlength=k * k).reshape(k, k)


def classification_metrics(
    reference: np.ndarray, predicted: np.ndarray, classes: list[dict[str, Any]]
) -> dict[str, Any]:
    """OA, kappa, per-class producer's/user's accuracy, omission/commission, F1, macro-F1 and target passes.

    A class passes when omission and commission are both at most 15 %; `targets_passed` also needs
    OA >= 90 %. Classes with neither reference nor predicted samples are reported with nulls and do
    not count.
    """
    codes = [int(c["value"]) for c in classes]
    cm = confusion_matrix(reference, predicted, codes)
    n = cm.sum()
    diag = np.diag(cm).astype(np.float64)
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    oa = float(diag.sum() / n) if n else 0.0
    pe = float((rows * cols).sum() / n**2) if n else 0.0
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    per_class: dict[str, Any] = {}
    f1s = []
    for i, c in enumerate(classes):
        pa, ua = _ratio(diag[i], rows[i]), _ratio(diag[i], cols[i])
        f1 = None
        if pa is not None and ua is not None:
            f1 = 0.0 if pa + ua == 0 else 2 * pa * ua / (pa + ua)
        elif pa is not None or ua is not None:
            f1 = 0.0
        if f1 is not None:
            f1s.append(f1)
        om = None if pa is None else 1 - pa
        co = None if ua is None else 1 - ua
        passed = None
        if rows[i] or cols[i]:
            passed = om is not None and co is not None and om <= OMISSION_TARGET and co <= COMMISSION_TARGET
        per_class[str(c["value"])] = {
            "name": c["name"],
            "producer_accuracy": pa,
            "user_accuracy": ua,
            "omission": om,
            "commission": co,
            "f1": f1,
            "support": int(rows[i]),
            "pass": passed,
        }
    classes_pass = all(v["pass"] for v in per_class.values() if v["pass"] is not None)
    return {
        "samples": int(n),
        "overall_accuracy": oa,
        "kappa": float(kappa),
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
        "targets": {
            "overall_accuracy": OA_TARGET,
            "omission": OMISSION_TARGET,
            "commission": COMMISSION_TARGET,
        },
        "oa_passed": oa >= OA_TARGET,
        "targets_passed": bool(oa >= OA_TARGET and classes_pass),
        "confusion_matrix": {"codes": codes, "rows_reference_cols_predicted": cm.tolist()},
    }


def regression_metrics(reference: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE, R², bias (mean predicted - reference) over finite reference values."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    pred = np.asarray(predicted, dtype=np.float64).ravel()
    ok = np.isfinite(ref) & np.isfinite(pred)
    ref, pred = ref[ok], pred[ok]
    if ref.size == 0:
        return {"samples": 0, "mae": None, "rmse": None, "r2": None, "bias": None}
    err = pred - ref
    ss_tot = float(((ref - ref.mean()) ** 2).sum())
    return {
        "samples": int(ref.size),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot > 0 else None,
        "bias": float(err.mean()),
    }


def write_confusion_matrix(
    metrics: dict[str, Any], classes: list[dict[str, Any]], out_dir: Path
) -> list[Path]:
    """confusion_matrix.csv and confusion_matrix.png in `out_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    cm = np.array(metrics["confusion_matrix"]["rows_reference_cols_predicted"])
    labels = [f"{c['value']} {c['name']}" for c in classes]
    csv = out_dir / "confusion_matrix.csv"
    pd.DataFrame(cm, index=pd.Index(labels, name="reference \\ predicted"), columns=labels).to_csv(csv)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.6 * len(labels)))
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(f"OA {metrics['overall_accuracy']:.3f}  kappa {metrics['kappa']:.3f}")
    fig.tight_layout()
    png = out_dir / "confusion_matrix.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [csv, png]


def write_scatter(
    reference: np.ndarray, predicted: np.ndarray, metrics: dict[str, Any], out_dir: Path
) -> Path:
    """regression_scatter.png: 2-D histogram of predicted against reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    ref, pred = np.asarray(reference).ravel(), np.asarray(predicted).ravel()
    ok = np.isfinite(ref) & np.isfinite(pred)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.hist2d(ref[ok], pred[ok], bins=50, range=[[0, 100], [0, 100]], cmap="viridis", cmin=1)
    ax.plot([0, 100], [0, 100], color="red", lw=1)
    ax.set_xlabel("reference")
    ax.set_ylabel("predicted")
    ax.set_title(f"MAE {metrics['mae']:.2f}  RMSE {metrics['rmse']:.2f}  bias {metrics['bias']:.2f}")
    fig.tight_layout()
    png = out_dir / "regression_scatter.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def write_metrics(metrics: dict[str, Any], path: Path) -> Path:
    """metrics.json, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2, default=_jsonable))
    tmp.replace(path)
    return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot write {type(v).__name__} to JSON")
