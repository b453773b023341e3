"""Per-second classification scores, cycle metrics and the confusion plot."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from etl.train.metrics import classification_report, cycle_metrics, plot_confusion

CLASSES = ["a", "b", "c", "d"]
Y_TRUE = ["a", "a", "a", "b", "b", "c", "c", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c", "c", "a"]


def test_precision_recall_f1_by_hand() -> None:
    rep = classification_report(Y_TRUE, Y_PRED, CLASSES)
    a, b, c = (rep["per_class"][k] for k in "abc")
    # a: tp=2, predicted 3, true 3
    assert a["precision"] == pytest.approx(2 / 3)
    assert a["recall"] == pytest.approx(2 / 3)
    assert a["f1"] == pytest.approx(2 / 3)
    assert a["support"] == 3
    # b: tp=1, predicted 2, true 2
    assert b["precision"] == pytest.approx(0.5)
    assert b["recall"] == pytest.approx(0.5)
    # c: tp=2, predicted 3, true 3
    assert c["f1"] == pytest.approx(2 / 3)
    assert rep["accuracy"] == pytest.approx(5 / 8)


def test_confusion_rows_true_cols_pred() -> None:
    rep = classification_report(Y_TRUE, Y_PRED, CLASSES)
    assert rep["confusion"] == [
        [2, 1, 0, 0],
        [0, 1, 1, 0],
        [1, 0, 2, 0],
        [0, 0, 0, 0],
    ]


def test_macro_f1_ignores_unsupported_classes() -> None:
    rep = classification_report(Y_TRUE, Y_PRED, CLASSES)
    d = rep["per_class"]["d"]
    assert d == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rep["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)


def test_unpredicted_class_has_zero_precision_but_counts_in_macro() -> None:
    rep = classification_report(["a", "b"], ["a", "a"], ["a", "b"])
    assert rep["per_class"]["b"]["precision"] == 0.0
    assert rep["per_class"]["a"]["precision"] == pytest.approx(0.5)
    assert rep["per_class"]["a"]["f1"] == pytest.approx(2 / 3)
    assert rep["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_report_rejects_bad_labels() -> None:
    with pytest.raises(ValueError):
        classification_report(["a"], ["z"], ["a"])
    with pytest.raises(ValueError):
        classification_report(["a", "a"], ["a"], ["a"])


def _cycles(durations: list[int], complete: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"duration_s": durations, "is_complete": complete})


def test_cycle_metrics_on_inline_frames() -> None:
    true = _cycles([100, 120, 140, 500], [True, True, True, False])
    pred = _cycles([90, 110, 150, 160, 1000], [True, True, True, True, False])
    m = cycle_metrics(true, pred)
    assert m["true_cycles"] == 3
    assert m["pred_cycles"] == 4
    assert m["cycle_count_error"] == pytest.approx(1 / 3)
    # medians over complete cycles: true 120, pred (110 + 150) / 2 = 130
    assert m["median_duration_error"] == pytest.approx(10 / 120)


def test_cycle_metrics_nan_without_true_cycles() -> None:
    m = cycle_metrics(_cycles([100], [False]), _cycles([100], [True]))
    assert m["true_cycles"] == 0
    assert math.isnan(m["cycle_count_error"])
    assert math.isnan(m["median_duration_error"])


def test_plot_confusion_writes_png(tmp_path: Path) -> None:
    rep = classification_report(Y_TRUE, Y_PRED, CLASSES)
    out = tmp_path / "plots" / "confusion.png"
    plot_confusion(rep["confusion"], CLASSES, str(out), "test")
    assert out.exists()
    data = out.read_bytes()
    assert len(data) > 0
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
