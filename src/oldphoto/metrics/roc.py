"""ROC curve and AUC for the defect detector (paper Fig. 6).

Scores and labels are flat arrays (e.g. per-pixel detector probabilities and ground-truth masks, which
``pixels_from_masks`` flattens and concatenates over a set of images).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def pixels_from_masks(scores: Iterable[np.ndarray], masks: Iterable[np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray]:
    s_all, l_all = [], []
    for s, m in zip(scores, masks, strict=True):
        s, m = np.asarray(s, np.float64), np.asarray(m)
        if s.shape != m.shape:
            raise ValueError(f"score map {s.shape} and mask {m.shape} differ in size")
        s_all.append(s.ravel())
        l_all.append(m.ravel() > 0.5)
    return np.concatenate(s_all), np.concatenate(l_all)


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds), thresholds decreasing; starts at (0, 0)."""
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores for {y.size} labels")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both positive and negative labels")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # ties share one threshold
    tp = np.cumsum(y)[last_of_run]
    fp = (last_of_run + 1) - tp
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    thresholds = np.r_[np.inf, s[last_of_run]]
    return fpr, tpr, thresholds


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.trapezoid(tpr, fpr))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return auc(*roc_curve(scores, labels)[:2])


def _counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(true positives, false positives, thresholds, positives) at each ROC threshold ``score >= t``."""
    fpr, tpr, thresholds = roc_curve(scores, labels)
    y = np.asarray(labels).ravel().astype(bool)
    n_pos = int(y.sum())
    return tpr[1:] * n_pos, fpr[1:] * int((~y).sum()), thresholds[1:], n_pos


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the score threshold ``score >= t`` that maximises F1 on these labels.

    A detector trained with class-balanced weights is not calibrated: its probabilities overstate
    defects, so the official 0.4 would mark much of a clean photo.  This picks the operating point.
    """
    tp, fp, thresholds, n_pos = _counts(scores, labels)
    f1 = 2 * tp / np.maximum(tp + fp + n_pos, 1)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def threshold_for_precision(scores: np.ndarray, labels: np.ndarray, min_precision: float
                            ) -> tuple[float, float, float]:
    """(threshold, precision, recall) of the lowest threshold whose precision reaches ``min_precision``
    (the highest-precision threshold when none does): the operating point for "flag only what is
    almost surely a defect"."""
    tp, fp, thresholds, n_pos = _counts(scores, labels)
    precision = tp / np.maximum(tp + fp, 1)
    ok = np.nonzero(precision >= min_precision)[0]
    i = int(ok[-1]) if ok.size else int(np.argmax(precision))
    return float(thresholds[i]), float(precision[i]), float(tp[i] / n_pos)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
             title: str = "Defect detection ROC") -> Path:
    """Write a PNG with one ROC curve per entry (label -> (fpr, tpr)), AUC in the legend."""
    try:
        import matplotlib
    except ImportError as exc:
        from oldphoto.metrics.features import OptionalPackageMissing

        raise OptionalPackageMissing("the ROC plot needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oldphoto.files import atomic_write

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    for label, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
