"""Noisy copies of StateVectors: what a noisier receiver, de-noised as preprocessing does, gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.config import AugmentParams
from etl.preprocess.denoise import METRES_PER_DEGREE, DenoiseParams, local_metres
from etl.train.augment import copy_id, noisy_copy

T0 = 1_767_225_600
LAT0, LON0 = -23.36, 119.73
THREE_X = AugmentParams(gps_noise_m=(6.0, 6.0), speed_noise_mps=(0.9, 0.9))


def vectors(seconds: int = 1200) -> pd.DataFrame:
    """A machine that stands for 5 minutes, then drives east at 8 m/s, on clean StateVectors."""
    t = np.arange(seconds, dtype=np.int64)
    speed = np.where(t < 300, 0.0, 8.0)
    east = np.cumsum(speed) - speed[0]
    return pd.DataFrame(
        {
            "machine_uuid": "m-1",
            "ts": T0 + t,
            "latitude": np.full(seconds, LAT0),
            "longitude": LON0 + east / (METRES_PER_DEGREE * np.cos(np.radians(LAT0))),
            "altitude": 400.0,
            "speed": speed,
            "heading": 90.0,
            "acc_z_mean": 9.81 + 0.01 * np.sin(t),
            "day": "2026-01-01",
        }
    )


def test_a_copy_is_deterministic_per_copy_and_keeps_what_is_not_gnss() -> None:
    clean = vectors()
    first = noisy_copy(clean, 1, THREE_X, DenoiseParams(), seed=7)
    again = noisy_copy(clean.sample(frac=1.0, random_state=1), 1, THREE_X, DenoiseParams(), seed=7)
    other = noisy_copy(clean, 2, THREE_X, DenoiseParams(), seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["speed"], other["speed"])
    assert set(first["machine_uuid"]) == {copy_id("m-1", 1)} == {"m-1~gnss1"}
    for column in ("ts", "acc_z_mean", "day"):
        assert (first[column].to_numpy() == clean[column].to_numpy()).all()


def test_a_copy_carries_the_noise_left_after_de_noising() -> None:
    clean = vectors()
    copy = noisy_copy(clean, 1, THREE_X, DenoiseParams(), seed=7)
    east, north = local_metres(
        copy["latitude"].to_numpy(),
        copy["longitude"].to_numpy(),
        clean["latitude"].to_numpy(),
        clean["longitude"].to_numpy(),
    )
    position = np.sqrt(np.mean(east**2 + north**2))
    # 6 m per axis raw; the de-noiser leaves a fraction of it, not none
    assert 0.5 < position < 6.0
    moving = clean["speed"] > 0
    speed_error = np.sqrt(np.mean((copy["speed"] - clean["speed"])[moving] ** 2))
    assert 0.05 < speed_error < 0.9
    # at rest the measured noise is taken off: no crawl at 0.8 sigma = 0.72 m/s
    assert copy.loc[~moving, "speed"].iloc[30:-30].median() < 0.2


def test_no_noise_gives_back_the_clean_vectors() -> None:
    clean = vectors()
    quiet = AugmentParams(gps_noise_m=(0.0, 0.0), speed_noise_mps=(0.0, 0.0))
    copy = noisy_copy(clean, 1, quiet, DenoiseParams(), seed=7)
    # away from the start, whose jump from 0 to 8 m/s no de-noiser keeps sharp
    steady = np.abs(clean["ts"] - (T0 + 300)) > 20
    assert np.abs(copy["speed"] - clean["speed"])[steady].max() < 0.05
    drift = np.abs(copy["longitude"] - clean["longitude"])[steady].max() * METRES_PER_DEGREE
    assert drift < 0.5


def test_unknown_gps_stays_unknown_and_each_stretch_draws_its_level() -> None:
    clean = vectors()
    clean.loc[100:120, ["latitude", "longitude", "altitude", "speed", "heading"]] = np.nan
    gapped = clean.drop(index=range(600, 640))  # a 40 s gap: two stretches
    wide = AugmentParams(gps_noise_m=(0.0, 8.0), speed_noise_mps=(0.0, 1.2))
    copy = noisy_copy(gapped, 1, wide, DenoiseParams(), seed=3)
    assert copy["speed"].isna().sum() == 21 and len(copy) == len(gapped)
    before, after = copy["ts"] < T0 + 600, copy["ts"] >= T0 + 640
    moving = gapped["speed"].to_numpy() > 0
    errors = [
        np.std((copy["speed"].to_numpy() - gapped["speed"].to_numpy())[part & moving])
        for part in (before.to_numpy(), after.to_numpy())
    ]
    # seed 3 draws levels 0.47 and 0.03 of the ranges: one level per machine would
    # leave both stretches with errors of one size
    assert errors[0] > 3 * errors[1]
