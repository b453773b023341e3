"""Noise augmentation: the training seconds again, as a noisier GNSS receiver would give them.

A model learns only the sensor quality of the fleet it was trained on; a
receiver three times as noisy then moves its speed and heading features where
the model never looked (issue 19: excavator macro-F1 0.96 -> 0.71 at 3x GNSS
noise, even with the noise measured in preprocessing). Training on both
closes that gap without knowing the new receiver in advance.

A noisy copy is made from the StateVectors themselves, not from the raw files:
their de-noised fixes (1 Hz) become raw fixes again with white noise of a
level drawn per stretch from the configured range (position per axis, 1.5
times that in altitude, folded noise on speed, course noise ``sigma / speed``
on heading when moving and the body's steady heading at rest), and go through
the same :func:`etl.preprocess.denoise.denoise_fixes` that preprocessing
runs. IMU columns are kept. Each copy is its own machine (``<uuid>~gnss<k>``)
so that its features are windows over its own seconds only, and it takes the
labels of the seconds it copies. Every draw is seeded by a hash of the
training seed, the machine, the copy and the stretch: the same inputs give the
same copies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from etl.config import AugmentParams
from etl.preprocess.denoise import (
    METRES_PER_DEGREE,
    DenoiseParams,
    denoise_fixes,
    heading_components,
    wrap_degrees,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

COPY_MARK = "~gnss"
"""Joins a machine's UUID and a copy's number into the copy's machine id."""

STRETCH_GAP_S = 10
"""A gap longer than this starts a new stretch, which draws its own noise level."""

COURSE_SPEED_MPS = 0.7
"""Below this reported speed a receiver gives the body's heading, not its noisy course."""

BODY_HEADING_NOISE_DEG = 0.5
"""White noise on the body heading a standing receiver reports, degrees."""

_GPS = ("latitude", "longitude", "altitude", "speed", "heading")


def copy_id(machine_uuid: str, copy: int) -> str:
    """The machine id of a machine's ``copy``-th noisy copy."""
    return f"{machine_uuid}{COPY_MARK}{copy}"


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by a stable hash (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def _stretches(ts: np.ndarray) -> Iterator[slice]:
    """Slices of sorted seconds between gaps longer than :data:`STRETCH_GAP_S`."""
    breaks = np.flatnonzero(np.diff(ts) > STRETCH_GAP_S) + 1
    bounds = [0, *breaks.tolist(), ts.size]
    for lo, hi in pairwise(bounds):
        yield slice(lo, hi)


def noisy_fixes(
    fixes: np.ndarray, gps_noise_m: float, speed_noise_mps: float, rng: np.random.Generator
) -> np.ndarray:
    """De-noised fixes ``(6, n)`` made raw again by a receiver with these noise levels.

    Rows as :func:`etl.preprocess.denoise.denoise_fixes` takes them: ``timestamp,
    latitude, longitude, altitude, speed, heading``.
    """
    t, lat, lon, alt, speed, heading = fixes
    east, north, up, fold, turn = rng.standard_normal((5, t.size))
    lat_noisy = lat + gps_noise_m * north / METRES_PER_DEGREE
    lon_noisy = lon + gps_noise_m * east / (METRES_PER_DEGREE * np.cos(np.radians(lat)))
    reported = np.abs(speed + speed_noise_mps * fold)
    course = heading + np.degrees(speed_noise_mps * turn / np.maximum(speed, 0.5))
    body = heading + BODY_HEADING_NOISE_DEG * turn
    moving = (speed > 0.3) & (reported >= COURSE_SPEED_MPS)
    return np.vstack(
        [
            t,
            lat_noisy,
            lon_noisy,
            alt + 1.5 * gps_noise_m * up,
            reported,
            wrap_degrees(np.where(moving, course, body)),
        ]
    )


def _back_on_seconds(smoothed: np.ndarray, ts: np.ndarray) -> dict[str, np.ndarray]:
    """De-noised fixes read at the seconds (a rejected fix is bridged by its neighbours)."""
    t = smoothed[0]
    north, east = heading_components(smoothed[5])
    values = {name: np.interp(ts, t, smoothed[i + 1]) for i, name in enumerate(_GPS[:4])}
    values["heading"] = wrap_degrees(
        np.degrees(np.arctan2(np.interp(ts, t, east), np.interp(ts, t, north)))
    )
    return values


def noisy_copy(
    frame: pd.DataFrame,
    copy: int,
    augment: AugmentParams,
    denoise: DenoiseParams,
    seed: int,
) -> pd.DataFrame:
    """One machine's StateVectors as its ``copy``-th noisier receiver would give them.

    Args:
        frame: StateVectors of one machine (any order; GPS columns may be null).
        copy: Which copy (1, 2, ...): its machine id and its draws.
        augment: The ranges the noise levels are drawn from.
        denoise: The de-noising preprocessing runs.
        seed: The training seed.

    Returns:
        The same rows and columns, sorted by ``ts``, with the GPS columns replaced
        where they were known and ``machine_uuid`` the copy's id.
    """
    out = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    machine = str(out["machine_uuid"].iloc[0]) if len(out) else ""
    ts = out["ts"].to_numpy(dtype=np.int64)
    gps = out[list(_GPS)].to_numpy(dtype=np.float64, na_value=np.nan)
    known = np.isfinite(gps).all(axis=1)
    (gps_low, gps_high), (speed_low, speed_high) = augment.gps_noise_m, augment.speed_noise_mps
    for part in _stretches(ts):
        rows = np.flatnonzero(known[part]) + part.start
        if rows.size < 2:
            continue
        rng = _rng(seed, machine, copy, int(ts[part.start]))
        level = rng.uniform()  # the same share of both ranges: one receiver's quality
        gps_noise = gps_low + level * (gps_high - gps_low)
        speed_noise = speed_low + level * (speed_high - speed_low)
        fixes = np.vstack([ts[rows].astype(np.float64), gps[rows].T])
        raw = noisy_fixes(fixes, gps_noise, speed_noise, rng)
        smoothed, _ = denoise_fixes(raw, denoise)
        for name, values in _back_on_seconds(smoothed, ts[rows].astype(np.float64)).items():
            out.loc[rows, name] = values
    out["machine_uuid"] = copy_id(machine, copy)
    return out


def noisy_vectors(
    vectors: DataFrame, augment: AugmentParams, denoise: DenoiseParams, seed: int
) -> DataFrame:
    """``augment.copies`` noisy copies of every machine's StateVectors, in Spark.

    One ``applyInPandas`` group per machine; the result has the input's columns,
    each copy under its own machine id (:func:`copy_id`).
    """
    schema = vectors.schema

    def copies(frame: pd.DataFrame) -> pd.DataFrame:
        made = [noisy_copy(frame, k, augment, denoise, seed) for k in range(1, augment.copies + 1)]
        return pd.concat(made, ignore_index=True)[schema.fieldNames()]

    return vectors.groupBy("machine_uuid").applyInPandas(copies, schema=schema)
