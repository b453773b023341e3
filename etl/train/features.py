"""Per-second features of StateVectors, and activity labels spread onto those seconds.

An activity classifier cannot tell loading from hauling from one second of
telemetry; it needs the context around it. Each feature here is therefore
computed over windows of neighbouring seconds of the same machine, in Spark,
with window functions partitioned by ``machine_uuid`` and ordered by ``ts``.

Every frame uses ``rangeBetween`` on ``ts`` rather than ``rowsBetween``: a
StateVector is missing wherever the machine was off or out of coverage, and a
range frame of ``[-h, h]`` seconds then holds only the seconds that really lie
that close, where a row frame would reach across the gap into another trip.
For the same reason the "previous second" features (jerk, heading rate) and
the stopped/moving runs treat a jump of more than one second as a break.

Every frame is bounded (at most :data:`FEATURE_REACH_S` from the second): a
second's features are the same whether they are computed over a whole history
or over a stretch around it, which lets training compute them only around the
seconds it samples and inference from a short warm-up before its cut. All frames
share one partitioning, so Spark evaluates them after a single shuffle; no
Python UDF is involved. Features are doubles and never
null (a missing IMU gives zeros, flagged by ``imu_missing``) because the
downstream learners do not accept nulls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Column, Window, WindowSpec
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DEFAULT_HORIZONS: tuple[int, ...] = (5, 15, 60)
"""Half-widths in seconds of the centred windows: a manoeuvre, a cycle phase, a minute."""

STOPPED_SPEED = 0.5
"""Below this speed (m/s) a machine counts as stopped; GPS jitter alone stays under it."""

SPEED_CHANGE_LOOKBACK = 5
"""Speed change compares with the mean of this many seconds before the row."""

RUN_HORIZON_S = 60
"""Stop runs and the time since the last stop are seen a minute each way: a run longer
than that counts as "long", and every feature stays a bounded window (see FEATURE_REACH_S)."""

LATERAL_EPSILON = 1e-6
"""Keeps the lateral vibration ratio finite when the vertical axis is perfectly still."""

GRAVITY_HORIZON_S = 60
"""Half-width of the window whose mean acceleration gives gravity's direction."""

FEATURES_VERSION = 3
"""What the features mean, for the models that learnt from them: 2 bounded the stop runs
to RUN_HORIZON_S and made the lateral vibration ratio independent of the mounting; 3 reads
speed measured against each receiver's noise (preprocessing no longer leaves folded noise
on a standstill: 0.08 m/s less at rest with the default noise) and learns from noisy
copies. A version's manifest records it; a champion of another version is due for
retraining."""

_BASE_FEATURES: tuple[str, ...] = (
    "speed",
    "speed_change",
    "stopped",
    "stop_duration",
    "time_since_stop",
    "acc_magnitude",
    "jerk",
    "vibration_energy",
    "lateral_vibration_ratio",
    "heading_rate",
    "imu_missing",
)

_HORIZON_FEATURES: tuple[str, ...] = (
    "speed_mean",
    "speed_std",
    "speed_min",
    "speed_max",
    "vibration_mean",
    "vibration_max",
    "altitude_rate",
    "heading_rate_mean",
)

ROTATION_HORIZONS: tuple[int, ...] = (2, 5)
"""Half-widths of the windows over the body's rotation: an excavator's swing lasts ~5 s."""

CONTEXT_HORIZONS: tuple[int, ...] = (15, 60)
"""Lengths of the one-sided windows before and after a second (what came, what follows)."""

_ROTATION_FEATURES: tuple[str, ...] = ("rotation_mean", "horizontal_acc_mean")
_CONTEXT_FEATURES: tuple[str, ...] = (
    "vibration_max_before",
    "vibration_max_after",
    "speed_mean_before",
    "speed_mean_after",
)
_EXTRA_FEATURES: tuple[str, ...] = ("rotation_rate", "heading_offset_60", "horizontal_acc")

_ACC_COLUMNS: tuple[str, ...] = (
    "acc_x_mean",
    "acc_y_mean",
    "acc_z_mean",
    "acc_x_std",
    "acc_y_std",
    "acc_z_std",
)


def feature_columns(horizons: tuple[int, ...] = DEFAULT_HORIZONS) -> tuple[str, ...]:
    """The feature names :func:`statevector_features` returns for these horizons, in order.

    Rolling features are named ``<feature>_<h>`` (e.g. ``speed_mean_15``) so that
    a model trained with some horizons can check it is fed the same ones.

    Args:
        horizons: Half-widths in seconds of the centred windows.

    Returns:
        The base features, then the rolling ones, horizon by horizon.
    """
    rolling = tuple(f"{name}_{h}" for h in horizons for name in _HORIZON_FEATURES)
    rotation = tuple(f"{name}_{h}" for h in ROTATION_HORIZONS for name in _ROTATION_FEATURES)
    context = tuple(f"{name}_{h}" for h in CONTEXT_HORIZONS for name in _CONTEXT_FEATURES)
    return _BASE_FEATURES + rolling + _EXTRA_FEATURES + rotation + context


FEATURE_COLUMNS: tuple[str, ...] = feature_columns(DEFAULT_HORIZONS)
"""The features for the default horizons, in the order models expect them."""

HEADING_OFFSET_HORIZON_S = 60
"""Half-width of the window ``heading_offset_60`` compares the heading with."""

FEATURE_REACH_S: int = max(
    max(
        *DEFAULT_HORIZONS,
        *ROTATION_HORIZONS,
        *CONTEXT_HORIZONS,
        SPEED_CHANGE_LOOKBACK,
        HEADING_OFFSET_HORIZON_S,
        GRAVITY_HORIZON_S,
        RUN_HORIZON_S,
    )
    + 1,
    # horizontal_acc_mean_h: a mean over h of values that read gravity over its horizon
    GRAVITY_HORIZON_S + max(ROTATION_HORIZONS),
)
"""How far from a second its features look, in seconds: the widest window plus the
previous/next second that per-row values (jerk, heading rate, run starts) compare with.
A second's features depend only on the StateVectors within this reach, so training
computes them on the stretches around sampled seconds alone and gets exactly what a
computation over the whole history gives (tests/spark/test_train_sample.py)."""


def _circular_difference(current: Column, previous: Column) -> Column:
    """Absolute angle between two headings in degrees, wrapped into [0, 180].

    A turn from 359 to 1 degrees is 2 degrees, not 358; without the wrap every
    machine driving north would look like it spins.
    """
    diff = F.pmod(current - previous, F.lit(360.0))
    return F.least(diff, F.lit(360.0) - diff)


def _against_gravity(by_time: WindowSpec) -> tuple[Column, Column]:
    """Vertical vibration variance and horizontal mean acceleration, however the logger sits.

    Gravity's direction in the logger's frame is the mean acceleration over
    :data:`GRAVITY_HORIZON_S` each way. The vertical variance is
    ``sum(g_i^2 std_i^2) / |g|^2`` (axes assumed uncorrelated); the horizontal
    mean acceleration ``|a x g| / |g|`` is a swing's centripetal and tangential
    pull, a start or a stop (the cross product, not ``|a|^2 - (a.g)^2 / |g|^2``,
    which loses the small horizontal part to cancellation against gravity's).
    """
    gravity = [
        F.avg(f"acc_{axis}_mean").over(by_time.rangeBetween(-GRAVITY_HORIZON_S, GRAVITY_HORIZON_S))
        for axis in "xyz"
    ]
    variances = [F.col(f"acc_{axis}_std") ** 2 for axis in "xyz"]
    weight = sum((g**2 for g in gravity), F.lit(0.0))
    vertical = F.when(
        weight > 0,
        sum((g**2 * v for g, v in zip(gravity, variances, strict=True)), F.lit(0.0)) / weight,
    )
    acc = [F.col(f"acc_{axis}_mean") for axis in "xyz"]
    cross = [
        acc[(i + 1) % 3] * gravity[(i + 2) % 3] - acc[(i + 2) % 3] * gravity[(i + 1) % 3]
        for i in range(3)
    ]
    level = F.when(weight > 0, F.sqrt(sum((c**2 for c in cross), F.lit(0.0)) / weight))
    return vertical, level


def statevector_features(
    vectors: DataFrame, horizons: tuple[int, ...] = DEFAULT_HORIZONS
) -> DataFrame:
    """Compute the per-second features of StateVectors.

    Features (all doubles, nulls replaced by 0.0):

    * ``speed``; rolling mean/std/min/max of speed over ``[-h, h]``;
    * ``speed_change``: speed minus the mean speed over ``[-5, -1]``;
    * ``stopped``: 1.0 when speed < 0.5 m/s;
    * ``stop_duration``: length in seconds of the run of equal ``stopped``
      values the row belongs to (a stopped run or a moving run), as far as it
      lies within :data:`RUN_HORIZON_S` of the row (at most ``2 h + 1``); a gap
      of more than one second starts a new run;
    * ``time_since_stop``: seconds since the latest stopped second at or before
      the row, :data:`RUN_HORIZON_S` when there is none that close;
    * ``acc_magnitude``: norm of the mean acceleration vector;
    * ``jerk``: absolute change of ``acc_magnitude`` from the previous second,
      0 after a gap;
    * ``vibration_energy``: sum of the squared acceleration standard deviations,
      with its rolling mean/max over ``[-h, h]``;
    * ``lateral_vibration_ratio``: horizontal over vertical vibration (standard
      deviations), "vertical" being the direction of gravity as the mean
      acceleration over ``[-60, 60]`` s shows it: the same wherever and however the
      logger is mounted (axes assumed uncorrelated: the vertical variance is
      ``sum(g_i^2 std_i^2) / |g|^2``, the horizontal the rest of the total);
    * ``altitude_rate_h``: (mean altitude over ``[0, h]`` minus mean over
      ``[-h, 0]``) / h, a climb rate robust to GPS altitude noise;
    * ``heading_rate``: absolute circular heading change from the previous
      second in degrees, in [0, 180], 0 after a gap or below 0.5 m/s (a
      standing machine's GPS heading is noise), with its rolling mean;
    * ``imu_missing``: 1.0 when any IMU statistic of the second is null, so a
      model can tell "no vibration" from "no sensor";
    * ``rotation_rate``: absolute heading change from the previous second *also
      when standing* (receivers with IMU fusion report the body's heading at
      rest, and an excavator swings on the spot), with its rolling mean over
      ``[-h, h]`` for ``h`` in :data:`ROTATION_HORIZONS`;
    * ``horizontal_acc``: the mean acceleration's part off gravity's direction
      (as for the lateral ratio): a swing's centripetal and tangential pull, a
      start, a stop, told by the IMU whatever the GNSS noise; with its rolling
      mean over ``[-h, h]`` for ``h`` in :data:`ROTATION_HORIZONS`;
    * ``heading_offset_60``: angle between the heading and its circular mean
      over ``[-60, 60]`` (an excavator dwells at the face, so the truck side is
      the far one, whichever way the truck stands);
    * ``vibration_max_before_h``/``_after_h`` and ``speed_mean_before_h``/
      ``_after_h`` over ``[-h, -1]`` and ``[1, h]`` for ``h`` in
      :data:`CONTEXT_HORIZONS`: what came before and what follows, which tells
      loaded travel (after the loading's vibration) from empty travel (before it).

    Args:
        vectors: StateVectors, one row per machine and second; extra columns
            are ignored.
        horizons: Half-widths in seconds of the centred rolling windows.

    Returns:
        ``machine_uuid``, ``ts`` (long) and :func:`feature_columns` of ``horizons``.
    """
    by_time = Window.partitionBy("machine_uuid").orderBy("ts")
    run_behind = by_time.rangeBetween(-RUN_HORIZON_S, 0)
    run_ahead = by_time.rangeBetween(0, RUN_HORIZON_S)
    lookback = by_time.rangeBetween(-SPEED_CHANGE_LOOKBACK, -1)

    speed = F.col("speed").cast("double")
    df = vectors.select(
        "machine_uuid",
        F.col("ts").cast("long").alias("ts"),
        speed.alias("speed"),
        F.col("altitude").cast("double").alias("altitude"),
        F.col("heading").cast("double").alias("heading"),
        *(F.col(c).cast("double").alias(c) for c in _ACC_COLUMNS),
    )

    # Step 1: values of the row itself and of the previous second.
    prev_ts = F.lag("ts").over(by_time)
    contiguous = (F.col("ts") - prev_ts) == 1
    acc_mag = F.sqrt(F.col("acc_x_mean") ** 2 + F.col("acc_y_mean") ** 2 + F.col("acc_z_mean") ** 2)
    stopped = F.when(F.coalesce(F.col("speed"), F.lit(0.0)) < STOPPED_SPEED, 1.0).otherwise(0.0)
    df = df.select(
        "*",
        acc_mag.alias("acc_magnitude"),
        (F.col("acc_x_std") ** 2 + F.col("acc_y_std") ** 2 + F.col("acc_z_std") ** 2).alias(
            "vibration_energy"
        ),
        stopped.alias("stopped"),
        F.when(F.greatest(*(F.col(c).isNull() for c in _ACC_COLUMNS)), 1.0)
        .otherwise(0.0)
        .alias("imu_missing"),
        F.coalesce(contiguous, F.lit(False)).alias("_contiguous"),
        F.lag(acc_mag).over(by_time).alias("_prev_acc"),
        F.lag("heading").over(by_time).alias("_prev_heading"),
        F.lag(stopped).over(by_time).alias("_prev_stopped"),
    )
    moving = F.coalesce(F.col("speed"), F.lit(0.0)) >= STOPPED_SPEED
    df = df.select(
        "*",
        F.when(F.col("_contiguous"), F.abs(F.col("acc_magnitude") - F.col("_prev_acc")))
        .otherwise(0.0)
        .alias("jerk"),
        F.when(
            F.col("_contiguous") & moving,
            _circular_difference(F.col("heading"), F.col("_prev_heading")),
        )
        .otherwise(0.0)
        .alias("heading_rate"),
        # the body's rotation, also standing: a swinging excavator turns on the spot
        F.when(F.col("_contiguous"), _circular_difference(F.col("heading"), F.col("_prev_heading")))
        .otherwise(0.0)
        .alias("rotation_rate"),
        F.sin(F.radians("heading")).alias("_heading_sin"),
        F.cos(F.radians("heading")).alias("_heading_cos"),
        (~F.col("_contiguous") | (F.col("stopped") != F.col("_prev_stopped"))).alias("_run_start"),
    )

    # Step 2: a run ends where the next row starts a new one (or there is no next row).
    df = df.withColumn("_run_end", F.coalesce(F.lead("_run_start").over(by_time), F.lit(True)))

    # Step 3: every windowed aggregate; all share one partitioning (one shuffle).
    # no run start within the horizon: the run began before it (the rows are contiguous)
    run_first = F.coalesce(
        F.max(F.when(F.col("_run_start"), F.col("ts"))).over(run_behind),
        F.col("ts") - RUN_HORIZON_S,
    )
    run_last = F.coalesce(
        F.min(F.when(F.col("_run_end"), F.col("ts"))).over(run_ahead),
        F.col("ts") + RUN_HORIZON_S,
    )
    last_stop = F.max(F.when(F.col("stopped") == 1.0, F.col("ts"))).over(run_behind)
    vertical, level_acc = _against_gravity(by_time)
    horizontal = F.greatest(F.col("vibration_energy") - vertical, F.lit(0.0))
    df = df.withColumn("horizontal_acc", level_acc)
    aggregates: dict[str, Column] = {
        "speed_change": F.col("speed") - F.avg("speed").over(lookback),
        "stop_duration": (run_last - run_first + 1).cast("double"),
        "time_since_stop": F.coalesce(F.col("ts") - last_stop, F.lit(RUN_HORIZON_S)).cast("double"),
        "lateral_vibration_ratio": F.sqrt(horizontal) / (F.sqrt(vertical) + LATERAL_EPSILON),
    }
    for h in horizons:
        centred = by_time.rangeBetween(-h, h)
        ahead = by_time.rangeBetween(0, h)
        behind = by_time.rangeBetween(-h, 0)
        aggregates[f"speed_mean_{h}"] = F.avg("speed").over(centred)
        aggregates[f"speed_std_{h}"] = F.stddev_pop("speed").over(centred)
        aggregates[f"speed_min_{h}"] = F.min("speed").over(centred)
        aggregates[f"speed_max_{h}"] = F.max("speed").over(centred)
        aggregates[f"vibration_mean_{h}"] = F.avg("vibration_energy").over(centred)
        aggregates[f"vibration_max_{h}"] = F.max("vibration_energy").over(centred)
        aggregates[f"altitude_rate_{h}"] = (
            F.avg("altitude").over(ahead) - F.avg("altitude").over(behind)
        ) / F.lit(float(h))
        aggregates[f"heading_rate_mean_{h}"] = F.avg("heading_rate").over(centred)

    for h in ROTATION_HORIZONS:
        aggregates[f"rotation_mean_{h}"] = F.avg("rotation_rate").over(by_time.rangeBetween(-h, h))
        aggregates[f"horizontal_acc_mean_{h}"] = F.avg("horizontal_acc").over(
            by_time.rangeBetween(-h, h)
        )
    for h in CONTEXT_HORIZONS:
        before, after = by_time.rangeBetween(-h, -1), by_time.rangeBetween(1, h)
        aggregates[f"vibration_max_before_{h}"] = F.max("vibration_energy").over(before)
        aggregates[f"vibration_max_after_{h}"] = F.max("vibration_energy").over(after)
        aggregates[f"speed_mean_before_{h}"] = F.avg("speed").over(before)
        aggregates[f"speed_mean_after_{h}"] = F.avg("speed").over(after)
    # How far the body points from where it pointed on average over two minutes: an
    # excavator dwells longer at the face than at the truck, so the dump side is the far one.
    around = by_time.rangeBetween(-HEADING_OFFSET_HORIZON_S, HEADING_OFFSET_HORIZON_S)
    mean_heading = F.degrees(
        F.atan2(F.avg("_heading_sin").over(around), F.avg("_heading_cos").over(around))
    )
    aggregates["heading_offset_60"] = _circular_difference(F.col("heading"), mean_heading)

    def feature(name: str) -> Column:
        column = aggregates.get(name, F.col(name))
        return F.coalesce(column.cast("double"), F.lit(0.0)).alias(name)

    return df.select("machine_uuid", "ts", *(feature(n) for n in feature_columns(horizons)))


def second_ranges(labels: DataFrame) -> DataFrame:
    """Activity intervals as the whole seconds they cover: ``first`` to ``last``, inclusive.

    A label ``[start, end)`` covers the seconds ``ceil(start) .. ceil(end) - 1``; an
    interval holding no whole second is dropped (``sequence`` fails on an empty
    range, and such a label says nothing about any second).

    Returns:
        ``machine_uuid``, ``activity``, ``first`` and ``last`` (long).
    """
    first = F.ceil(F.col("start")).cast("long")
    last = (F.ceil(F.col("end")) - 1).cast("long")
    return labels.select(
        "machine_uuid", "activity", first.alias("first"), last.alias("last")
    ).where(F.col("first") <= F.col("last"))


def labels_per_second(labels: DataFrame) -> DataFrame:
    """Spread activity intervals onto the whole seconds they cover.

    Features are per second at integer ``ts``; a label ``[start, end)`` covers
    the seconds ``ceil(start) .. ceil(end) - 1``. An interval that contains no
    whole second (shorter than a second, between two ticks) gives no row
    rather than a row outside it. Overlapping labels give one row each.

    Args:
        labels: ``machine_uuid``, ``start``, ``end`` (unix seconds, end
            exclusive) and ``activity``.

    Returns:
        ``machine_uuid``, ``ts`` (long) and ``activity``.
    """
    return (
        second_ranges(labels)
        .select(
            "machine_uuid",
            F.explode(F.sequence("first", "last")).alias("ts"),
            "activity",
        )
        # Spark sizes this by the few label files and would broadcast it to every join,
        # but the explode makes one row per second: 1.2 GB for 14 days of 5 dumpers,
        # an OutOfMemoryError on a 3 GB driver. A sort-merge join spills instead.
        .hint("merge")
    )


def join_labels(features: DataFrame, labels: DataFrame) -> DataFrame:
    """Attach the activity of each labelled second to its features.

    The join is inner: a second no label covers is dropped, not called idle,
    because "nobody labelled it" says nothing about what the machine did.

    Args:
        features: Output of :func:`statevector_features`.
        labels: Activity intervals, as taken by :func:`labels_per_second`.

    Returns:
        The feature rows with labels, plus an ``activity`` column.
    """
    return features.join(labels_per_second(labels), on=["machine_uuid", "ts"], how="inner")
