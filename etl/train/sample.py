"""A machine type's training set: a bounded sample of its labelled seconds, and held-out blocks.

Training on every labelled second makes each retrain cost grow with the fleet
(500 machines x 14 days is 600 M seconds). The training set is a sample instead,
whose size is set by :class:`etl.config.SampleParams`, not by the fleet:

1. the labels become whole-second ranges (:func:`etl.train.features.second_ranges`),
   split into a training side and a held-out side (:class:`Split`);
2. training ranges (:func:`training_ranges`): an activity with at most
   ``max_rows_per_class`` labelled seconds keeps them all; beyond it, each of its
   segments is clipped to a stretch of ``max_segment_s`` seconds (where in the
   segment, a hash decides) and the stretches are taken in turns from every
   machine (each machine's from one hashed day on, so few machine-days are read)
   until the cap: stratified by activity and by machine;
3. held-out ranges (:func:`evaluation_ranges`): blocks of ``eval_block_s``
   seconds of the held-out machines, again in turns, up to ``eval_seconds``;
   whole blocks, so that smoothing and cycles are judged on contiguous time;
4. features are computed only on the StateVectors within
   :data:`etl.train.features.FEATURE_REACH_S` of a chosen second
   (:func:`vectors_near`): every feature is a bounded window, so those seconds'
   features are exactly what the whole history would give them.

Every choice is a hash of the seed and the data (never a random draw), so the same
inputs give the same sample. The sample is what a model version stores as its
training data (``models/{type}/v{N}/training_data/``) and what it is fitted on.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.config import AugmentParams, SampleParams
from etl.io.delta import utc_day
from etl.preprocess.denoise import DenoiseParams
from etl.state.domain import merge_intervals
from etl.train.augment import COPY_MARK, noisy_vectors
from etl.train.features import FEATURE_REACH_S, second_ranges, statevector_features
from etl.train.model import FORWARD, HELD_OUT, SPLIT, TRAINING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DAY_S = 86_400
BUCKET_S = 3_600
"""StateVectors are matched to the chosen ranges by machine and hour, then by second."""
TRAINING_DATA_PARTITIONS = 8
"""Partitions a stored training set is read back into (by hash, each sorted): a fixed
layout, so that a forest's per-partition bootstrap draws the same rows every time."""


def _before(ranges: DataFrame, cut: int) -> DataFrame:
    """The ranges' parts before second ``cut``."""
    from pyspark.sql import functions as F

    return ranges.where(F.col("first") < cut).withColumn(
        "last", F.least(F.col("last"), F.lit(cut - 1))
    )


def _from(ranges: DataFrame, cut: int) -> DataFrame:
    """The ranges' parts from second ``cut`` on."""
    from pyspark.sql import functions as F

    return ranges.where(F.col("last") >= cut).withColumn(
        "first", F.greatest(F.col("first"), F.lit(cut))
    )


@dataclass(frozen=True)
class Split:
    """Which labelled seconds are held out, and which judge the model forward in time.

    Whole machines are held out (or a lone machine's latest time). With
    ``forward_after_ts`` every machine's time from then on is kept out of training
    too and judges the model on days it did not learn from; held-out machines are
    then judged on the time before it.
    """

    holdout_machines: tuple[str, ...] = ()
    holdout_after_ts: int | None = None
    forward_after_ts: int | None = None

    def __post_init__(self) -> None:
        if bool(self.holdout_machines) == (self.holdout_after_ts is not None):
            raise ValueError("a split holds out machines or the time after a cut, one of them")
        if self.forward_after_ts is not None and not self.holdout_machines:
            raise ValueError("a lone machine's time split already judges forward in time")

    def record(self) -> dict[str, Any]:
        """For the manifest and MLflow's tags."""
        if self.holdout_machines:
            record: dict[str, Any] = {"holdout_machines": list(self.holdout_machines)}
            if self.forward_after_ts is not None:
                record["forward_after_ts"] = self.forward_after_ts
            return record
        return {"holdout_after_ts": self.holdout_after_ts}

    def training_side(self, ranges: DataFrame) -> DataFrame:
        """The ranges (or their parts) the model may learn from."""
        from pyspark.sql import functions as F

        if self.holdout_after_ts is not None:
            return _before(ranges, self.holdout_after_ts)
        mine = ranges.where(~F.col("machine_uuid").isin(list(self.holdout_machines)))
        return mine if self.forward_after_ts is None else _before(mine, self.forward_after_ts)

    def held_out_side(self, ranges: DataFrame) -> DataFrame:
        """The ranges (or their parts) the model is judged on."""
        from pyspark.sql import functions as F

        if self.holdout_after_ts is not None:
            return _from(ranges, self.holdout_after_ts)
        held = ranges.where(F.col("machine_uuid").isin(list(self.holdout_machines)))
        return held if self.forward_after_ts is None else _before(held, self.forward_after_ts)

    def forward_side(self, ranges: DataFrame) -> DataFrame | None:
        """Every machine's ranges from the forward cut on (None without one)."""
        return None if self.forward_after_ts is None else _from(ranges, self.forward_after_ts)


def _hash(seed: int, *columns: Column | str) -> Column:
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(seed), *columns)


def _length() -> Column:
    from pyspark.sql import functions as F

    return F.col("last") - F.col("first") + 1


def _in_turns(
    frame: DataFrame, group: Column, within: list[Column], seconds: Column, seed: int
) -> DataFrame:
    """``_before``: the ``seconds`` of ``group`` ahead of each row when machines take turns.

    Each machine's rows are ranked by ``within``; rank 1 of every machine comes
    first (machines in hashed order), then every rank 2, and so on.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    mine = Window.partitionBy(group, "machine_uuid").orderBy(*within)
    turns = (
        Window.partitionBy(group)
        .orderBy("_turn", _hash(seed, "machine_uuid"))
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    return frame.withColumn("_turn", F.row_number().over(mine)).withColumn(
        "_before", F.coalesce(F.sum(seconds).over(turns), F.lit(0))
    )


def training_ranges(ranges: DataFrame, limits: SampleParams, seed: int) -> DataFrame:
    """The training side's ranges to learn from, at most about the cap per activity.

    An activity over the cap has its segments clipped to ``max_segment_s`` and
    taken in turns from every machine (each machine's from its hashed first day
    on) until the cap; the last one taken may pass the cap by less than a segment.
    """
    from pyspark.sql import functions as F

    cap = limits.max_rows_per_class
    if cap is None:
        return ranges
    totals = ranges.groupBy("activity").agg(F.sum(_length()).alias("seconds")).collect()
    over = sorted(r["activity"] for r in totals if r["seconds"] > cap)
    if not over:
        return ranges
    keep = ranges.where(~F.col("activity").isin(over))
    longest = limits.max_segment_s
    spare = _length() - longest
    offset = F.when(spare > 0, F.pmod(_hash(seed, "machine_uuid", "first"), spare + 1))
    clipped = (
        ranges.where(F.col("activity").isin(over))
        .withColumn("_offset", F.coalesce(offset, F.lit(0)))
        .select(
            "machine_uuid",
            "activity",
            (F.col("first") + F.col("_offset")).alias("first"),
            F.least(F.col("last"), F.col("first") + F.col("_offset") + longest - 1).alias("last"),
        )
    )
    day = F.floor(F.col("first") / DAY_S)
    within = [_hash(seed, "machine_uuid", day), _hash(seed, "machine_uuid", "first")]
    taken = _in_turns(clipped, F.col("activity"), within, _length(), seed)
    taken = taken.where(F.col("_before") < cap)
    return keep.unionByName(taken.select(*keep.columns))


def evaluation_ranges(ranges: DataFrame, limits: SampleParams, seed: int) -> DataFrame:
    """The held-out side's ranges to judge on: whole blocks, in turns, up to the budget."""
    from pyspark.sql import functions as F

    budget = limits.eval_seconds
    if budget is None:
        return ranges
    size = limits.eval_block_s
    block = F.col("_block")
    pieces = ranges.withColumn(
        "_block",
        F.explode(F.sequence(F.floor(F.col("first") / size), F.floor(F.col("last") / size))),
    ).select(
        "machine_uuid",
        "activity",
        "_block",
        F.greatest(F.col("first"), block * size).alias("first"),
        F.least(F.col("last"), block * size + size - 1).alias("last"),
    )
    # a block counts its labelled seconds, not its span; few enough to choose on the driver
    blocks = (
        pieces.groupBy("machine_uuid", "_block").agg(F.sum(_length()).alias("_labelled")).toPandas()
    )
    picked = blocks_in_turns(blocks, budget, seed)
    chosen = ranges.sparkSession.createDataFrame(picked, "machine_uuid string, _block long")
    return pieces.join(F.broadcast(chosen), ["machine_uuid", "_block"]).drop("_block")


def blocks_in_turns(blocks: Any, budget: int, seed: int) -> list[tuple[str, int]]:
    """Held-out blocks taken in turns from every machine until ``budget`` labelled seconds.

    Args:
        blocks: a pandas frame of ``machine_uuid``, ``_block`` and ``_labelled``.
        budget: labelled seconds to reach (the last block taken may pass it).
        seed: orders each machine's blocks and the machines (a hash, not a draw).
    """

    def key(*parts: object) -> str:
        return hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).hexdigest()

    queues: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for machine, block, labelled in blocks.itertuples(index=False):
        queues[str(machine)].append((key(machine, block), int(block), int(labelled)))
    order = sorted(queues, key=key)
    turns = [sorted(queues[machine]) for machine in order]
    picked: list[tuple[str, int]] = []
    total = 0
    for turn in range(max(map(len, turns), default=0)):
        for machine, queue in zip(order, turns, strict=True):
            if total >= budget:
                return picked
            if turn < len(queue):
                _, block, labelled = queue[turn]
                picked.append((machine, block))
                total += labelled
    return picked


def reach(chosen: Any) -> dict[str, tuple[tuple[float, float], ...]]:
    """Per machine: the merged stretches of StateVectors the chosen seconds' features need.

    Args:
        chosen: a pandas frame of ``machine_uuid``, ``first``, ``last``.
    """
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for machine, first, last in chosen[["machine_uuid", "first", "last"]].itertuples(index=False):
        spans[machine].append((first - FEATURE_REACH_S, last + FEATURE_REACH_S))
    return {m: merge_intervals(s) for m, s in spans.items()}


def _seconds_in(stretches: Mapping[str, tuple[tuple[float, float], ...]]) -> int:
    """Seconds the stretches of :func:`reach` cover (inclusive ends)."""
    return sum(int(last - first + 1) for spans in stretches.values() for first, last in spans)


def vectors_near(
    vectors: DataFrame, stretches: Mapping[str, tuple[tuple[float, float], ...]]
) -> DataFrame:
    """The StateVectors within ``stretches`` (inclusive), read from their partitions only."""
    from pyspark.sql import functions as F

    spark = vectors.sparkSession
    rows, days = [], {}
    for machine, spans in stretches.items():
        touched: set[str] = set()
        for first, last in spans:
            lo, hi = int(first), int(last)
            rows += [(machine, b, lo, hi) for b in range(lo // BUCKET_S, hi // BUCKET_S + 1)]
            touched |= {utc_day(d * DAY_S) for d in range(lo // DAY_S, hi // DAY_S + 1)}
        days[machine] = sorted(touched)
    if not rows:
        return vectors.limit(0)
    partitions: Column | None = None
    for machine, machine_days in sorted(days.items()):
        clause = (F.col("machine_uuid") == machine) & F.col("day").isin(machine_days)
        partitions = clause if partitions is None else partitions | clause
    spans = spark.createDataFrame(rows, "machine_uuid string, _bucket long, _lo long, _hi long")
    return (
        vectors.where(partitions)
        .withColumn("_bucket", F.floor(F.col("ts") / BUCKET_S))
        .join(F.broadcast(spans), ["machine_uuid", "_bucket"])
        .where(F.col("ts").between(F.col("_lo"), F.col("_hi")))
        .drop("_bucket", "_lo", "_hi")
    )


@dataclass(frozen=True)
class TrainingSet:
    """The sampled rows (features, ``activity``, :data:`SPLIT`) and what was chosen."""

    rows: DataFrame
    chosen_seconds: dict[str, dict[str, int]]
    """Per side (:data:`SIDES`) and activity: labelled seconds chosen."""
    feature_seconds: int
    """StateVector seconds the features were computed on (the chosen ones and their reach)."""

    def record(self) -> dict[str, Any]:
        """For the manifest: how large the sample is and what it cost."""
        return {"chosen_seconds": self.chosen_seconds, "feature_seconds": self.feature_seconds}


def training_set(
    vectors: DataFrame,
    labels: DataFrame,
    split: Split,
    limits: SampleParams,
    seed: int,
    *,
    augment: AugmentParams | None = None,
    denoise: DenoiseParams | None = None,
) -> TrainingSet:
    """The type's sampled training, held-out and forward seconds with features and labels.

    ``vectors`` and ``labels`` are the type's machines' StateVectors and label
    intervals. The chosen ranges are collected (their number is bounded by the
    limits) to find the stretches to read; a second labelled twice gives two rows.
    With ``augment``, the training seconds come again from noisy copies of their
    StateVectors (:mod:`etl.train.augment`), each under its copy's machine id.
    """
    from pyspark.sql import functions as F

    ranges = second_ranges(labels)
    sides = {
        TRAINING: training_ranges(split.training_side(ranges), limits, seed),
        HELD_OUT: evaluation_ranges(split.held_out_side(ranges), limits, seed),
    }
    ahead = split.forward_side(ranges)
    if ahead is not None:
        sides[FORWARD] = evaluation_ranges(ahead, limits, seed)
    union = None
    for side, frame in sides.items():
        marked = frame.withColumn(SPLIT, F.lit(side))
        union = marked if union is None else union.unionByName(marked)
    assert union is not None
    chosen = union.toPandas()
    lengths = chosen["last"] - chosen["first"] + 1
    counts: dict[str, dict[str, int]] = {side: {} for side in sides}
    for (side, activity), seconds in (
        lengths.groupby([chosen[SPLIT], chosen["activity"]]).sum().items()
    ):
        counts[str(side)][str(activity)] = int(seconds)
    stretches = reach(chosen)
    spark = vectors.sparkSession
    seconds = spark.createDataFrame(
        chosen[["machine_uuid", "activity", "first", "last", SPLIT]],
        f"machine_uuid string, activity string, first long, last long, {SPLIT} string",
    ).select(
        "machine_uuid",
        F.explode(F.sequence("first", "last")).alias("ts"),
        "activity",
        SPLIT,
    )
    features = statevector_features(vectors_near(vectors, stretches))
    rows = features.join(seconds, ["machine_uuid", "ts"])
    span = _seconds_in(stretches)
    if augment is not None and augment.copies > 0:
        noisy, noisy_span = _noisy_rows(
            vectors,
            chosen,
            seconds,
            augment=augment,
            denoise=denoise or DenoiseParams(),
            seed=seed,
        )
        if noisy is not None:
            rows, span = rows.unionByName(noisy), span + noisy_span
    return TrainingSet(rows, counts, span)


def _noisy_rows(
    vectors: DataFrame,
    chosen: Any,
    seconds: DataFrame,
    *,
    augment: AugmentParams,
    denoise: DenoiseParams,
    seed: int,
) -> tuple[DataFrame | None, int]:
    """Training rows from noisy copies of the StateVectors the training seconds need."""
    from pyspark.sql import functions as F

    training = chosen[chosen[SPLIT] == TRAINING]
    if training.empty:
        return None, 0
    stretches = reach(training)
    copies = vectors.sparkSession.range(1, augment.copies + 1).select(
        F.col("id").cast("int").alias("_copy")
    )
    noisy_seconds = (
        seconds.where(F.col(SPLIT) == TRAINING)
        .crossJoin(copies)
        .withColumn("machine_uuid", F.concat("machine_uuid", F.lit(COPY_MARK), "_copy"))
        .drop("_copy")
    )
    noisy = noisy_vectors(vectors_near(vectors, stretches), augment, denoise, seed)
    rows = statevector_features(noisy).join(noisy_seconds, ["machine_uuid", "ts"])
    return rows, _seconds_in(stretches) * augment.copies


def training_data_url(version_url: str) -> str:
    """Where a model version keeps the rows it was fitted and judged on."""
    return f"{version_url}/training_data"


def write_training_data(rows: DataFrame, url: str) -> int:
    """Store a training set as parquet (replacing a killed attempt's); returns its rows."""
    rows.write.mode("overwrite").parquet(url)
    return int(rows.sparkSession.read.parquet(url).count())


def read_training_data(spark: SparkSession, url: str) -> DataFrame:
    """A stored training set in its fixed layout (:data:`TRAINING_DATA_PARTITIONS`)."""
    return (
        spark.read.parquet(url)
        .repartition(TRAINING_DATA_PARTITIONS, "machine_uuid", "ts")
        .sortWithinPartitions("machine_uuid", "ts", "activity", SPLIT)
    )
