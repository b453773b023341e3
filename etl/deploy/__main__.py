"""``python -m etl.deploy``: generate the manifests, compile the pipeline, schedule it.

::

    python -m etl.deploy manifests --config conf/prod.example.yaml --out deploy/k8s
    python -m etl.deploy pipeline --config conf/prod.example.yaml --out deploy/pipeline.yaml
    python -m etl.deploy schedule --config conf/prod.yaml --host URL --experiment NAME

Exit status 0 on success, 1 when the work failed, 2 for a bad config or usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from etl.config import ConfigError
from etl.deploy.manifests import load_source, write_manifests

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The three commands; each reads one pipeline config."""
    parser = argparse.ArgumentParser(
        prog="python -m etl.deploy", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    manifests = commands.add_parser("manifests", help="write the Kubernetes manifests")
    manifests.add_argument("--out", type=Path, default=Path("deploy/k8s"))
    pipeline = commands.add_parser("pipeline", help="compile the Kubeflow pipeline to YAML")
    pipeline.add_argument("--out", type=Path, default=Path("deploy/pipeline.yaml"))
    schedule = commands.add_parser("schedule", help="create the recurring run in Kubeflow")
    schedule.add_argument("--host", required=True, help="the Kubeflow Pipelines API")
    schedule.add_argument("--experiment", required=True)
    schedule.add_argument("--package", default="deploy/pipeline.yaml")
    schedule.add_argument(
        "--skip-train", action="store_true", help="runs skip the train step (it trains when due)"
    )
    for command in (manifests, pipeline, schedule):
        command.add_argument("--config", required=True, help="pipeline YAML with kubernetes:")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        source = load_source(args.config)
    except ConfigError as exc:
        print(f"etl.deploy: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "manifests":
            for path in write_manifests(source, args.out):
                print(path)
        elif args.command == "pipeline":
            from etl.deploy.pipeline import compile_pipeline

            print(compile_pipeline(source, args.out))
        else:
            from etl.deploy.pipeline import create_recurring_run

            run = create_recurring_run(
                source.config, args.host, args.experiment, args.package, args.skip_train
            )
            print(getattr(run, "recurring_run_id", run))
    except ConfigError as exc:
        print(f"etl.deploy: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"etl.deploy {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
