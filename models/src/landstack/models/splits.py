"""Train/test splits: grouped by object id when groups are known, stratified by class otherwise."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedShuffleSplit,
)


def holdout_split(
    labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with about `fraction` of the samples in test.

    With groups every group lands on one side (pixels of one polygon are not independent); classes
    are kept in proportion where the data allows it.
    """
    n = len(labels)
    idx = np.arange(n)
    if n < 2 or fraction <= 0:
        return idx, idx[:0]
    if groups is not None and len(np.unique(groups)) >= 2:
        k = round(1 / fraction)
        if stratify and abs(1 / k - fraction) < 0.02 and k >= 2:
            try:
                sgk = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
                tr, te = next(sgk.split(idx, labels, groups))
                if len(te):
                    return _keep_classes_in_training(tr, te, labels, groups) if stratify else (tr, te)
            except ValueError:
                pass
        gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        tr, te = next(gss.split(idx, labels, groups))
        return _keep_classes_in_training(tr, te, labels, groups) if stratify else (tr, te)
    if stratify:
        try:
            sss = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
            tr, te = next(sss.split(idx, labels))
            return tr, te
        except ValueError:
            pass
    tr, te = next(ShuffleSplit(n_splits=1, test_size=fraction, random_state=seed).split(idx))
    return tr, te


def _keep_classes_in_training(
    tr: np.ndarray, te: np.ndarray, labels: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move test groups back into training for every class the split left without training samples.

    A model cannot learn a class it never sees, so evaluating it on one says nothing; a class found
    in a single group stays in training (and is simply not evaluated), unless no test sample would
    be left at all.
    """
    in_train = set(labels[tr].tolist())
    move: set[int] = set()
    for cls in sorted(set(labels[te].tolist()) - in_train):
        test_groups = sorted(set(groups[te][labels[te] == cls].tolist()))
        # all of them when the class has one group, otherwise one group (the largest stays in test)
        sizes = {g: int(np.sum(groups[te] == g)) for g in test_groups}
        keep_out = max(test_groups, key=lambda g: sizes[g]) if len(test_groups) > 1 else None
        move.update(g for g in test_groups if g != keep_out)
    back = np.isin(groups[te], list(move))
    if not move or back.all():  # nothing to fix, or nothing would be left to evaluate on
        return tr, te
    return np.sort(np.concatenate([tr, te[back]])), te[~back]


def kfold_indices(labels: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of `folds` disjoint folds covering every sample once (grouped when groups given)."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    idx = np.arange(len(labels))
    if groups is not None and len(np.unique(groups)) >= folds:
        try:
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
            return [te for _, te in splitter.split(idx, labels, groups)]
        except ValueError:
            return [te for _, te in GroupKFold(n_splits=folds).split(idx, labels, groups)]
    try:
        return [te for _, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(idx, labels)]
    except ValueError:
        return [te for _, te in KFold(folds, shuffle=True, random_state=seed).split(idx)]
