"""Noise augmentation in the training set: noisy copies of the training side only."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from test_train_sample import T0, labels, telemetry

from etl.config import AugmentParams, SampleParams
from etl.train.augment import COPY_MARK
from etl.train.features import FEATURE_COLUMNS
from etl.train.model import HELD_OUT, SPLIT, TRAINING
from etl.train.sample import Split, training_set

LIMITS = SampleParams(max_rows_per_class=2_000, max_segment_s=60, eval_seconds=3600)


def located(spark: SparkSession) -> DataFrame:
    """The sampling tests' telemetry with a track: it drives north at its speed."""
    return telemetry(spark).withColumns(
        {
            "latitude": F.lit(-23.36) + (F.col("ts") - T0) * F.lit(3e-5),
            "longitude": F.lit(119.73),
        }
    )


def test_noisy_copies_join_the_training_side_only(spark: SparkSession) -> None:
    vectors, label_frame = located(spark), labels(spark)
    split = Split(holdout_machines=("m-c",))
    plain = training_set(vectors, label_frame, split, LIMITS, seed=1).rows.toPandas()
    sample = training_set(
        vectors, label_frame, split, LIMITS, seed=1, augment=AugmentParams(copies=2)
    )
    rows = sample.rows.toPandas()
    copies = rows[rows["machine_uuid"].str.contains(COPY_MARK, regex=False)]
    originals = rows[~rows["machine_uuid"].str.contains(COPY_MARK, regex=False)]
    assert len(originals) == len(plain)
    assert set(copies[SPLIT]) == {TRAINING} and HELD_OUT in set(originals[SPLIT])
    made = {f"{m}{COPY_MARK}{k}" for m in ("m-a", "m-b") for k in (1, 2)}
    assert set(copies["machine_uuid"]) == made
    # every training second comes twice more, with its label
    training = originals[originals[SPLIT] == TRAINING]
    assert len(copies) == 2 * len(training)
    copy_one = copies[copies["machine_uuid"].str.endswith(f"{COPY_MARK}1")].copy()
    copy_one["machine_uuid"] = copy_one["machine_uuid"].str.replace(f"{COPY_MARK}1", "")
    paired = training.merge(copy_one, on=["machine_uuid", "ts"], suffixes=("", "_noisy"))
    assert len(paired) == len(training)
    assert (paired["activity"] == paired["activity_noisy"]).all()
    # GNSS features moved, IMU ones did not
    assert not (paired["speed"] == paired["speed_noisy"]).all()
    assert (paired["acc_magnitude"] == paired["acc_magnitude_noisy"]).all()
    assert set(FEATURE_COLUMNS) <= set(rows.columns)
    assert (
        sample.feature_seconds
        > training_set(vectors, label_frame, split, LIMITS, seed=1).feature_seconds
    )
