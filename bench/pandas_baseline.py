"""The single-process pandas implementation of the StateVector contract (benchmark baseline).

Reads every raw file of every configured machine, validates it exactly as the
pipeline does, and resamples each machine's whole history at once with the
same pure functions; writes one parquet file per machine. Prints a JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from etl.config import load_config
from etl.preprocess import imu_second_stats, resample_machine
from etl.preprocess.validate import ValidationLimits, validate_batch


def main(config_path: str) -> None:
    """Run the baseline over the config's machines and print rows and vectors as JSON."""
    config = load_config(config_path)
    raw = Path(urlparse(config.storage.raw_url).path)
    out = Path(urlparse(config.output_url).path) / "baseline"
    out.mkdir(parents=True, exist_ok=True)
    limits = ValidationLimits(max_speed_mps=config.preprocess.max_speed_mps)
    rows = vectors = 0
    for asset in config.assets:
        frames, seen = [], set()
        for path in sorted((raw / asset.uuid).glob("*.parquet")):
            verdict = validate_batch(
                path.read_bytes(),
                key=f"{asset.uuid}/{path.name}",
                machine_uuid=asset.uuid,
                limits=limits,
            )
            if verdict.accepted and verdict.quality["sha256"] not in seen:
                seen.add(verdict.quality["sha256"])
                frames.append(verdict.samples)
                rows += len(verdict.samples)
        if not frames:
            continue
        samples = pd.concat(frames, ignore_index=True).drop_duplicates()
        gps = samples.loc[samples["latitude"].notna() | samples["speed"].notna()]
        imu = samples.loc[
            samples["acc_x"].notna() & samples["acc_y"].notna() & samples["acc_z"].notna()
        ]
        result = resample_machine(
            gps,
            imu_second_stats(imu),
            machine_uuid=asset.uuid,
            max_gap_s=config.preprocess.max_gap_s,
        )
        result.to_parquet(out / f"{asset.uuid}.parquet", index=False)
        vectors += len(result)
    print(json.dumps({"rows": rows, "vectors": vectors}))


if __name__ == "__main__":
    main(sys.argv[1])
