"""The one evaluation harness: methods run on sets of samples, scored per image, averaged per method.

``oldphoto evaluate benchmark`` (:mod:`oldphoto.metrics.benchmark`, which adds tables, sheets and
distribution metrics) and ``oldphoto train evaluate`` (:mod:`oldphoto.train.evaluate`, the held-out table
of the weights' cards) both score through :func:`score_set` and :func:`mean_row`, so a figure means the
same in both.

A method is a callable ``(image, mask_or_None) -> image`` on float RGB in [0, 1]; the harness passes no
mask (a method finds the defects itself, as ``oldphoto restore`` does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from oldphoto.metrics.per_image import Metric, evaluate_image

Method = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass
class Sample:
    name: str
    degraded: np.ndarray
    clean: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass
class SetScores:
    """Per-image rows (``file``, ``method``, ``seconds`` and the metrics) and outputs, by method."""

    rows: dict[str, list[dict[str, object]]]
    outputs: dict[str, list[np.ndarray]]


def score_set(samples: Sequence[Sample], methods: dict[str, Method], metrics: list[Metric],
              errors: dict[str, str] | None = None, on_image: Callable[[], None] | None = None) -> SetScores:
    """Run every method on every sample (clipped to [0, 1]) and score it against the sample's clean
    target (no-reference metrics only where there is none).  ``errors``: see
    :func:`~oldphoto.metrics.per_image.evaluate_image`; ``on_image``: called after each method × image."""
    rows: dict[str, list[dict[str, object]]] = {m: [] for m in methods}
    outputs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    for sample in samples:
        for name, method in methods.items():
            t0 = time.perf_counter()
            restored = np.clip(np.asarray(method(sample.degraded, None), np.float32), 0.0, 1.0)
            seconds = time.perf_counter() - t0
            if restored.shape != sample.degraded.shape:
                raise RuntimeError(f"method {name!r} changed the size of {sample.name}: "
                                   f"{sample.degraded.shape} -> {restored.shape}")
            row: dict[str, object] = {"file": sample.name, "method": name, "seconds": seconds}
            row.update(evaluate_image(metrics, restored, sample.clean, errors))
            rows[name].append(row)
            outputs[name].append(restored)
            if on_image is not None:
                on_image()
    return SetScores(rows, outputs)


def mean_row(rows: Sequence[dict[str, object]], metrics: Sequence[Metric]) -> dict[str, float]:
    """Each metric's mean over ``rows`` (NaN values, undefined on that image, left out; a metric with no
    value at all left out of the result)."""
    out: dict[str, float] = {}
    for metric in metrics:
        values = [float(r[metric.name]) for r in rows if metric.name in r]
        values = [v for v in values if not math.isnan(v)]
        if values:
            out[metric.name] = float(np.mean(values))
    return out
