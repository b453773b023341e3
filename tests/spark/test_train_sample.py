"""The sampled training set: bounded per activity, stratified by machine, exact features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

from etl.config import SampleParams
from etl.io.delta import utc_day
from etl.train.features import FEATURE_COLUMNS, FEATURE_REACH_S, statevector_features
from etl.train.model import FORWARD, HELD_OUT, SPLIT, TRAINING
from etl.train.sample import (
    Split,
    evaluation_ranges,
    reach,
    training_ranges,
    training_set,
    vectors_near,
)

T0 = 1_767_225_600 + 86_400 - 3 * 3600  # three hours before midnight: ranges cross a day
MACHINES = ("m-a", "m-b", "m-c")
VECTOR_SCHEMA = (
    "machine_uuid string, ts long, altitude double, speed double, heading double, "
    "acc_x_mean double, acc_y_mean double, acc_z_mean double, "
    "acc_x_std double, acc_y_std double, acc_z_std double, day string"
)


def telemetry(spark: SparkSession, seconds: int = 6 * 3600, seed: int = 3) -> DataFrame:
    """Machines that stop and go, turn, shake, lose seconds now and then: every feature moves."""
    rng = np.random.default_rng(seed)
    frames = []
    for machine in MACHINES:
        ts = T0 + np.arange(seconds)
        keep = rng.random(seconds) > 0.02  # single lost seconds
        keep[1000:1100] = False  # and a gap of 100 s
        stopped = (np.arange(seconds) // 90 + rng.integers(0, 2)) % 3 == 0
        speed = np.where(stopped, rng.random(seconds) * 0.3, 3 + rng.random(seconds) * 5)
        frames.append(
            pd.DataFrame(
                {
                    "machine_uuid": machine,
                    "ts": ts,
                    "altitude": 100 + np.cumsum(rng.normal(0, 0.2, seconds)),
                    "speed": speed,
                    "heading": np.cumsum(rng.normal(0, 8, seconds)) % 360,
                    "acc_x_mean": rng.normal(0, 0.5, seconds),
                    "acc_y_mean": rng.normal(0, 0.5, seconds),
                    "acc_z_mean": 9.81 + rng.normal(0, 0.3, seconds),
                    "acc_x_std": rng.random(seconds),
                    "acc_y_std": rng.random(seconds),
                    "acc_z_std": rng.random(seconds),
                }
            )[keep]
        )
    data = pd.concat(frames, ignore_index=True)
    data["day"] = [utc_day(t) for t in data["ts"]]
    return spark.createDataFrame(data, VECTOR_SCHEMA)


def labels(spark: SparkSession, seconds: int = 6 * 3600) -> DataFrame:
    """Segments of three activities; ``rare`` is short and scarce, ``long`` lasts 20 min."""
    rows = []
    for machine in MACHINES:
        t = T0
        while t < T0 + seconds:
            for activity, length in (("work", 60), ("rare", 4), ("work", 45), ("long", 1200)):
                rows.append((machine, float(t), float(t + length), activity))
                t += length
    return spark.createDataFrame(
        rows, "machine_uuid string, start double, end double, activity string"
    )


def ranges(spark: SparkSession) -> DataFrame:
    from etl.train.features import second_ranges

    return second_ranges(labels(spark))


def seconds_by(frame: pd.DataFrame, *keys: str) -> pd.Series:
    return (frame["last"] - frame["first"] + 1).groupby([frame[k] for k in keys]).sum()


def test_an_activity_past_the_cap_is_taken_in_turns_from_every_machine(
    spark: SparkSession,
) -> None:
    limits = SampleParams(max_rows_per_class=3_000, max_segment_s=120)
    all_ranges = ranges(spark).toPandas()
    chosen = training_ranges(ranges(spark), limits, seed=7).toPandas()
    totals, per_activity = seconds_by(all_ranges, "activity"), seconds_by(chosen, "activity")
    # under the cap: every second of every segment, unclipped
    assert totals["rare"] < 3_000
    assert per_activity["rare"] == totals["rare"]
    # over it: at most the cap plus one stretch, far less than there is
    for activity in ("work", "long"):
        assert totals[activity] > 3_000
        assert 3_000 <= per_activity[activity] < 3_000 + 120, activity
    # stretches of at most max_segment_s, inside one labelled segment each
    assert (chosen["last"] - chosen["first"] + 1).max() <= 120
    inside = chosen.merge(all_ranges, on=["machine_uuid", "activity"], suffixes=("", "_segment"))
    within = (inside["first"] >= inside["first_segment"]) & (
        inside["last"] <= inside["last_segment"]
    )
    assert within.groupby([inside["machine_uuid"], inside["first"]]).any().all()
    # stratified by machine: each machine gives a third, give or take a stretch
    by_machine = seconds_by(chosen[chosen["activity"] == "long"], "machine_uuid")
    assert set(by_machine.index) == set(MACHINES)
    assert by_machine.max() - by_machine.min() <= 120
    # a hash of the seed, not a draw: the same sample twice, another with another seed
    again = training_ranges(ranges(spark), limits, seed=7).toPandas()
    key = ["machine_uuid", "activity", "first"]
    pd.testing.assert_frame_equal(
        chosen.sort_values(key).reset_index(drop=True),
        again.sort_values(key).reset_index(drop=True),
    )
    other = training_ranges(ranges(spark), limits, seed=8).toPandas()
    assert set(map(tuple, other[key].to_numpy())) != set(map(tuple, chosen[key].to_numpy()))


def test_no_cap_keeps_every_labelled_second(spark: SparkSession) -> None:
    limits = SampleParams(max_rows_per_class=None)
    everything = training_ranges(ranges(spark), limits, seed=7).toPandas()
    assert len(everything) == len(ranges(spark).toPandas())


def test_held_out_time_is_whole_blocks_in_turns_up_to_the_budget(spark: SparkSession) -> None:
    limits = SampleParams(eval_seconds=4 * 3600, eval_block_s=3600)
    chosen = evaluation_ranges(ranges(spark), limits, seed=7).toPandas()
    blocks = chosen.assign(block=chosen["first"] // 3600)
    per_block = seconds_by(blocks, "machine_uuid", "block")
    # whole blocks (each of these hours is fully labelled), up to the budget plus one block
    assert (per_block == 3600).all(), per_block
    assert 4 * 3600 <= per_block.sum() < 5 * 3600
    assert blocks["machine_uuid"].nunique() == len(MACHINES)  # in turns
    assert (blocks["last"] // 3600 == blocks["block"]).all()  # pieces never cross a block


def test_a_forward_cut_keeps_every_machines_later_time_to_judge_on(spark: SparkSession) -> None:
    cut = T0 + 4 * 3600
    split = Split(holdout_machines=("m-c",), forward_after_ts=cut)
    every = ranges(spark)
    train = split.training_side(every).toPandas()
    held = split.held_out_side(every).toPandas()
    ahead = split.forward_side(every)
    assert ahead is not None
    forward = ahead.toPandas()
    assert set(train["machine_uuid"]) == {"m-a", "m-b"} and train["last"].max() == cut - 1
    assert set(held["machine_uuid"]) == {"m-c"} and held["last"].max() == cut - 1
    assert set(forward["machine_uuid"]) == set(MACHINES) and forward["first"].min() == cut
    assert split.record() == {"holdout_machines": ["m-c"], "forward_after_ts": cut}
    limits = SampleParams(max_rows_per_class=2_000, eval_seconds=3600, eval_block_s=1800)
    sample = training_set(telemetry(spark), labels(spark), split, limits, seed=1)
    sides = sample.rows.groupBy(SPLIT).agg({"ts": "min"}).toPandas().set_index(SPLIT)
    assert set(sides.index) == {TRAINING, HELD_OUT, FORWARD}
    assert sides.loc[FORWARD].iloc[0] >= cut
    assert set(sample.chosen_seconds) == {TRAINING, HELD_OUT, FORWARD}
    with pytest.raises(ValueError, match="already judges forward"):
        Split(holdout_after_ts=cut, forward_after_ts=cut)


def test_a_time_split_holds_out_what_follows_the_cut(spark: SparkSession) -> None:
    cut = T0 + 3000
    split = Split(holdout_after_ts=cut)
    train = split.training_side(ranges(spark)).toPandas()
    held = split.held_out_side(ranges(spark)).toPandas()
    assert train["last"].max() == cut - 1
    assert held["first"].min() == cut
    total = seconds_by(ranges(spark).toPandas(), "machine_uuid").sum()
    assert seconds_by(train, "machine_uuid").sum() + seconds_by(held, "machine_uuid").sum() == total
    with pytest.raises(ValueError, match="one of them"):
        Split()


def test_features_near_the_chosen_seconds_equal_those_of_the_whole_history(
    spark: SparkSession,
) -> None:
    vectors = telemetry(spark)
    full = statevector_features(vectors).toPandas().set_index(["machine_uuid", "ts"]).sort_index()
    # scattered stretches, some near the gap, one across midnight, two overlapping reaches
    chosen = pd.DataFrame(
        [
            ("m-a", T0 + 70, T0 + 80),
            ("m-a", T0 + 950, T0 + 1005),
            ("m-a", T0 + 1150, T0 + 1160),
            ("m-b", T0 + 3 * 3600 - 30, T0 + 3 * 3600 + 30),
            ("m-b", T0 + 5000, T0 + 5003),
            ("m-b", T0 + 5100, T0 + 5101),
        ],
        columns=["machine_uuid", "first", "last"],
    )
    stretches = reach(chosen)
    assert len(stretches["m-b"]) == 2  # 5000-5003 and 5100-5101 reach each other
    near = vectors_near(vectors, stretches)
    assert sorted(near.select("day").distinct().toPandas()["day"]) == [
        utc_day(T0),
        utc_day(T0 + 86_400),
    ]
    part = statevector_features(near).toPandas().set_index(["machine_uuid", "ts"]).sort_index()
    wanted = [
        (m, t)
        for m, first, last in chosen.itertuples(index=False)
        for t in range(first, last + 1)
        if (m, t) in full.index
    ]
    assert len(wanted) > 100
    pd.testing.assert_frame_equal(part.loc[wanted], full.loc[wanted], rtol=1e-9)
    # and the reach is needed: one second less changes some feature somewhere
    short = {m: tuple((a + 1, b - 1) for a, b in s) for m, s in stretches.items()}
    cut_short = statevector_features(vectors_near(vectors, short)).toPandas()
    cut_short = cut_short.set_index(["machine_uuid", "ts"]).sort_index()
    assert not np.allclose(cut_short.loc[wanted].to_numpy(), full.loc[wanted].to_numpy())
    assert FEATURE_REACH_S == 65


def test_the_training_set_holds_sampled_training_and_held_out_seconds(spark: SparkSession) -> None:
    limits = SampleParams(
        max_rows_per_class=2_000, max_segment_s=60, eval_seconds=3600, eval_block_s=1800
    )
    vectors, label_frame = telemetry(spark), labels(spark)
    sample = training_set(vectors, label_frame, Split(holdout_machines=("m-c",)), limits, seed=1)
    rows = sample.rows.toPandas()
    assert set(rows.columns) >= {"machine_uuid", "ts", "activity", SPLIT, *FEATURE_COLUMNS}
    assert set(rows[SPLIT]) == {TRAINING, HELD_OUT}
    training, held = rows[rows[SPLIT] == TRAINING], rows[rows[SPLIT] == HELD_OUT]
    assert set(held["machine_uuid"]) == {"m-c"} and "m-c" not in set(training["machine_uuid"])
    assert training.groupby("activity").size().max() < 2_000 + 60
    assert 0 < len(held) <= 3600 + 1800
    # rows are chosen seconds that have StateVectors (lost seconds have none)
    chosen = sum(sample.chosen_seconds["training"].values()) + sum(
        sample.chosen_seconds["held_out"].values()
    )
    assert 0.95 * chosen < len(rows) <= chosen
    assert sample.feature_seconds < 3 * 6 * 3600  # not the whole history


def test_held_out_blocks_are_taken_in_turns_until_the_budget() -> None:
    from etl.train.sample import blocks_in_turns

    blocks = pd.DataFrame(
        [("a", b, 100) for b in range(5)] + [("b", b, 100) for b in range(2)] + [("c", 0, 50)],
        columns=["machine_uuid", "_block", "_labelled"],
    )
    picked = blocks_in_turns(blocks, budget=420, seed=3)
    machines = [m for m, _ in picked]
    # one block of each machine first, then the second turn, until 420 s were reached
    assert sorted(machines[:3]) == ["a", "b", "c"]
    assert len(picked) == 5 and sum(100 if m != "c" else 50 for m in machines) >= 420
    assert picked == blocks_in_turns(blocks, budget=420, seed=3)  # a hash, not a draw
    assert len(blocks_in_turns(blocks, budget=10_000, seed=3)) == len(blocks)
    assert blocks_in_turns(blocks.iloc[:0], budget=10, seed=3) == []
