"""A fleet simulator: raw batch files, Kafka messages and labels per the raw-data contract.

Pure library: it returns bytes, dicts and frames and never touches storage
or Kafka. Typical use::

    settings = SimulationSettings(machines=10, days=1, seed=7)
    write_batches(simulate_fleet(settings, workers=2), store.put, workers=8)
    labels = fleet_labels(settings)
"""

from __future__ import annotations

from etl.simulate.faults import InjectedFault
from etl.simulate.fleet import (
    MachineRun,
    SimulatedBatch,
    collect_faults,
    fleet_assets,
    fleet_labels,
    machine_frames,
    machine_labels,
    machine_truth,
    simulate_fleet,
    simulate_machine,
    write_batches,
)
from etl.simulate.machines import ACTIVITIES
from etl.simulate.plot import plot_machine_day
from etl.simulate.settings import MACHINE_TYPES, FaultRates, SimulationSettings

__all__ = [
    "ACTIVITIES",
    "MACHINE_TYPES",
    "FaultRates",
    "InjectedFault",
    "MachineRun",
    "SimulatedBatch",
    "SimulationSettings",
    "collect_faults",
    "fleet_assets",
    "fleet_labels",
    "machine_frames",
    "machine_labels",
    "machine_truth",
    "plot_machine_day",
    "simulate_fleet",
    "simulate_machine",
    "write_batches",
]
