"""What the spark-submit entry points in ``jobs/`` call.

``spark-submit jobs/discover.py --config conf/prod.yaml`` runs exactly what
``etl --config conf/prod.yaml discover`` runs: the step name comes from the
job file, the rest of the command line is the CLI's global options.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl.cli import main


def run_step(step: str, argv: Sequence[str] | None = None) -> int:
    """Run one CLI step with the given global options (default: ``sys.argv[1:]``)."""
    options = list(sys.argv[1:] if argv is None else argv)
    return main([*options, step])
