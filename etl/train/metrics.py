"""Evaluation of activity predictions, per second and per work cycle.

Per-second scores say how well the classifier labels seconds; cycle metrics
say whether the numbers a site manager reads (cycle counts, typical cycle
time) come out right, which is what the labels are for. Both are reported
because a model can score well per second and still split or merge cycles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _safe_div(num: float, den: float) -> float:
    """``num / den``, or 0.0 when ``den`` is zero (the sklearn ``zero_division=0`` rule)."""
    return num / den if den else 0.0


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> dict:
    """Per-class precision, recall, F1 and support, with macro-F1, accuracy and confusion.

    Macro-F1 averages only classes that occur in ``y_true``: a class the test
    data never contains has no meaningful recall and would otherwise drag the
    mean down for reasons unrelated to the model. A class never predicted gets
    precision 0.

    Args:
        y_true: True labels.
        y_pred: Predicted labels, aligned with ``y_true``.
        classes: Every label, in the order used for ``confusion``.

    Returns:
        ``{"per_class": {cls: {"precision", "recall", "f1", "support"}},
        "macro_f1", "accuracy", "confusion", "classes"}``; ``confusion`` is a list
        of lists with rows = true and columns = predicted, in ``classes`` order.
        ``macro_f1`` and ``accuracy`` are NaN when there is nothing to score.

    Raises:
        ValueError: On length mismatch, duplicate classes, or labels outside ``classes``.
    """
    classes = list(classes)
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate classes: {classes}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in (*y_true, *y_pred) if v not in index})
    if unknown:
        raise ValueError(f"labels not in classes: {unknown}")
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    if len(y_true):
        t = np.fromiter((index[v] for v in y_true), dtype=np.int64, count=len(y_true))
        p = np.fromiter((index[v] for v in y_pred), dtype=np.int64, count=len(y_pred))
        np.add.at(confusion, (t, p), 1)
    per_class: dict[str, dict[str, float | int]] = {}
    f1_supported = []
    for i, c in enumerate(classes):
        tp = int(confusion[i, i])
        support = int(confusion[i].sum())
        precision = _safe_div(tp, int(confusion[:, i].sum()))
        recall = _safe_div(tp, support)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support > 0:
            f1_supported.append(f1)
    total = int(confusion.sum())
    return {
        "per_class": per_class,
        "macro_f1": float(np.mean(f1_supported)) if f1_supported else math.nan,
        "accuracy": float(np.trace(confusion) / total) if total else math.nan,
        "confusion": confusion.tolist(),
        "classes": classes,
    }


def _complete(cycles: pd.DataFrame) -> pd.DataFrame:
    """Only the complete cycles: cycles broken by a data gap have no trustworthy duration."""
    return cycles[cycles["is_complete"].astype(bool)]


def cycle_metrics(true_cycles: pd.DataFrame, pred_cycles: pd.DataFrame) -> dict:
    """Compare predicted with true work cycles on counts and typical duration.

    Only complete cycles are compared on both sides, so an outage does not
    count as a model error.

    Args:
        true_cycles: Cycles from the true labels (output of ``build_cycles``).
        pred_cycles: Cycles from the predicted labels, same shape.

    Returns:
        ``true_cycles`` and ``pred_cycles`` (complete-cycle counts),
        ``cycle_count_error`` (``|pred - true| / true``, NaN without true cycles)
        and ``median_duration_error`` (relative error of the median duration,
        NaN when either side has no complete cycle).
    """
    true_c, pred_c = _complete(true_cycles), _complete(pred_cycles)
    n_true, n_pred = len(true_c), len(pred_c)
    count_error = abs(n_pred - n_true) / n_true if n_true else math.nan
    if n_true and n_pred:
        med_true = float(true_c["duration_s"].median())
        med_pred = float(pred_c["duration_s"].median())
        duration_error = abs(med_pred - med_true) / med_true if med_true else math.nan
    else:
        duration_error = math.nan
    return {
        "true_cycles": n_true,
        "pred_cycles": n_pred,
        "cycle_count_error": count_error,
        "median_duration_error": duration_error,
    }


def plot_confusion(
    confusion: list[list[int]], classes: Sequence[str], path: str, title: str
) -> None:
    """Write the confusion matrix as a PNG heat map.

    Colours are normalised per row (recall per true class), so rare activities
    are as readable as common ones; the cells show raw counts so the support
    behind each colour is visible. Uses the Agg canvas directly, never pyplot,
    so it works headless and leaves no global figure state behind.

    Args:
        confusion: Square matrix, rows = true, columns = predicted.
        classes: Labels of the rows and columns, in order.
        path: Output PNG path; parent directories are created.
        title: Figure title.
    """
    counts = np.asarray(confusion, dtype=float).reshape(len(classes), len(classes))
    row_sums = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    size = max(4.0, 0.8 * len(classes) + 2.0)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(ticks, labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", color=colour)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=120)
