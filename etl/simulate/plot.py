"""A picture of one simulated machine-day, to check the simulator by eye."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from etl.simulate.fleet import machine_frames, machine_labels
from etl.simulate.machines import ACTIVITIES, machine_type
from etl.simulate.settings import SimulationSettings

_COLOURS = {
    "idle": "#9e9e9e",
    "queuing": "#ff9800",
    "loading": "#2196f3",
    "hauling": "#e53935",
    "dumping": "#8e24aa",
    "returning": "#43a047",
    "digging": "#2196f3",
    "swinging_loaded": "#e53935",
    "swinging_empty": "#43a047",
    "traveling": "#ff9800",
    "carrying": "#e53935",
}


def _activity_at(labels: pd.DataFrame, timestamps: np.ndarray) -> np.ndarray:
    """Label of each timestamp (None where unlabelled)."""
    starts, ends = labels["start"].to_numpy(), labels["end"].to_numpy()
    slot = np.searchsorted(starts, timestamps, side="right") - 1
    inside = (slot >= 0) & (timestamps < ends[np.clip(slot, 0, None)])
    names = labels["activity"].to_numpy(dtype=object)
    return np.where(inside, names[np.clip(slot, 0, None)], None)


def plot_machine_day(
    settings: SimulationSettings,
    path: str | Path,
    machine_index: int | None = None,
    zoom_hours: tuple[float, float] | None = None,
) -> Path:
    """Draw speed, altitude and acceleration magnitude of one machine over a day.

    Left: the whole first day, coloured by the ground-truth activity. Right:
    about one cycle, where the bed tip, load passes and ramp climb show.

    Args:
        settings: The simulation.
        path: Where to save the PNG.
        machine_index: Machine to draw (default: the first dumper).
        zoom_hours: Hours since the start for the right-hand panels
            (default: around the third loaded haul).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if machine_index is None:
        kinds = [machine_type(settings, i) for i in range(settings.machines)]
        machine_index = kinds.index("dumper") if "dumper" in kinds else 0
    kind = machine_type(settings, machine_index)
    gps, imu = machine_frames(settings, machine_index, seconds=86_400)
    labels = machine_labels(settings, machine_index)
    t0 = settings.start_timestamp
    gps_hours = (gps["timestamp"].to_numpy() - t0) / 3600.0
    acc = np.sqrt(imu["acc_x"] ** 2 + imu["acc_y"] ** 2 + imu["acc_z"] ** 2).to_numpy()
    imu_hours = (imu["timestamp"].to_numpy() - t0) / 3600.0
    per_second = np.floor(imu_hours * 3600.0).astype(np.int64)
    seconds, first = np.unique(per_second, return_index=True)
    peak = np.maximum.reduceat(np.abs(acc - 9.80665), first)
    if zoom_hours is None:
        hauls = labels[labels["activity"] == ACTIVITIES[kind][3]]
        centre = (hauls["start"].iloc[min(2, len(hauls) - 1)] - t0) / 3600.0 if len(hauls) else 1.0
        zoom_hours = (centre - 0.2, centre + 0.55)

    fig, axes = plt.subplots(
        3, 2, figsize=(16, 10), sharex="col", gridspec_kw={"width_ratios": [2, 1]}
    )
    gps_act = _activity_at(labels, gps["timestamp"].to_numpy())
    sec_act = _activity_at(labels, t0 + seconds.astype(np.float64))
    imu_act = _activity_at(labels, imu["timestamp"].to_numpy())
    zoom_gps = (gps_hours >= zoom_hours[0]) & (gps_hours < zoom_hours[1])
    zoom_imu = (imu_hours >= zoom_hours[0]) & (imu_hours < zoom_hours[1])
    for name in ACTIVITIES[kind]:
        colour = _COLOURS.get(name, "black")
        g, s, i = gps_act == name, sec_act == name, imu_act == name
        axes[0, 0].scatter(gps_hours[g], gps["speed"][g], s=0.3, c=colour, label=name)
        axes[1, 0].scatter(gps_hours[g], gps["altitude"][g], s=0.3, c=colour)
        axes[2, 0].scatter(seconds[s] / 3600.0, peak[s], s=0.3, c=colour)
        axes[0, 1].scatter(gps_hours[g & zoom_gps] * 60, gps["speed"][g & zoom_gps], s=2, c=colour)
        axes[1, 1].scatter(
            gps_hours[g & zoom_gps] * 60, gps["altitude"][g & zoom_gps], s=2, c=colour
        )
        axes[2, 1].scatter(imu_hours[i & zoom_imu] * 60, acc[i & zoom_imu], s=0.5, c=colour)
    axes[0, 0].set_ylabel("GNSS speed (m/s)")
    axes[1, 0].set_ylabel("altitude (m)")
    axes[2, 0].set_ylabel("max |acc| - g per second (m/s²)")
    axes[2, 1].set_ylabel("|acc| at 10 Hz (m/s²)")
    axes[2, 0].set_xlabel("hours since start (UTC)")
    axes[2, 1].set_xlabel("minutes since start (zoom)")
    axes[0, 0].legend(markerscale=20, loc="upper right", ncol=3, fontsize=8)
    fig.suptitle(
        f"Simulated {kind} {labels['machine_uuid'].iloc[0] if len(labels) else ''}: one day"
    )
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target
