"""Labelled segment durations per class, from per-second training rows in Spark."""

from __future__ import annotations

from pyspark.sql import SparkSession

from etl.train.model import LABEL, SegmentStats, runs, segment_stats


def test_segments_split_on_label_change_gap_and_machine(spark: SparkSession) -> None:
    rows = [("a", t, 0.0) for t in range(0, 10)]  # one 10 s segment of class 0
    rows += [("a", t, 1.0) for t in range(10, 13)]  # 3 s of class 1
    rows += [("a", t, 1.0) for t in range(20, 25)]  # after a gap: another segment, 5 s
    rows += [("b", t, 0.0) for t in range(0, 4)]  # another machine: its own 4 s segment
    frame = spark.createDataFrame(rows, f"machine_uuid string, ts long, {LABEL} double")
    stats = segment_stats(runs(frame))
    assert stats == {0: SegmentStats(7.0, 4.0), 1: SegmentStats(4.0, 3.0)}
