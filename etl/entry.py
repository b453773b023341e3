"""What the spark-submit entry points in ``jobs/`` call.

``spark-submit jobs/train.py --config conf/prod.yaml --log-json --if-due`` runs
exactly what ``etl --config conf/prod.yaml --log-json train --if-due`` runs: the
step name comes from the job file, the CLI's global options (``--config``,
``--log-level``, ``--log-json``) go before it and every other argument after it,
so a job takes its step's own options too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl.cli import build_parser, main


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The CLI's global options (with their values) apart from the step's own arguments."""
    takes_value = {
        option: action.nargs != 0
        for action in build_parser()._actions  # the top-level parser's own options
        for option in action.option_strings
    }
    global_options: list[str] = []
    step_options: list[str] = []
    args = iter(argv)
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in takes_value and name not in ("-h", "--help", "--version"):
            global_options.append(arg)
            if takes_value[name] and "=" not in arg:
                global_options.append(next(args, ""))
        else:
            step_options.append(arg)
    return global_options, step_options


def run_step(step: str, argv: Sequence[str] | None = None) -> int:
    """Run one CLI step with the given arguments (default: ``sys.argv[1:]``)."""
    global_options, step_options = split_arguments(sys.argv[1:] if argv is None else argv)
    return main([*global_options, step, *step_options])
