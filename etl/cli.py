"""The ``etl`` console script (shared/contracts/cli.md).

Entry points only parse arguments, load the config, bootstrap and call one
step; errors become one line on stderr and an exit status:

* 0: the command did its work (rejected files are data, not failures);
* 1: it could not work (a service is unreachable, a step failed);
* 2: bad usage or a bad config file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl import __version__
from etl.bootstrap import Context, bootstrap
from etl.config import ACTIVITIES, ConfigError, load_config
from etl.observe import configure_logging, emit_job_metrics
from etl.signals import EXIT_TERMINATED, TerminatedError, terminate_on_sigterm

log = logging.getLogger("etl")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PIPELINE_STEPS = ("discover", "preprocess", "train", "infer", "export", "run")
JOBS = (*PIPELINE_STEPS, "compact")
"""Commands that end with the job metrics of etl.observe."""


def _print_summary(summary: dict[str, object]) -> None:
    print(json.dumps(summary, default=str))


def _cmd_simulate(ctx: Context, args: argparse.Namespace) -> int:
    from etl.steps.simulate import simulate

    _print_summary(
        simulate(ctx, machines=args.machines, days=args.days, seed=args.seed, start=args.start)
    )
    return EXIT_OK


def _cmd_discover(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.discover import discover

    return discover(ctx)


def _cmd_preprocess(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.preprocess import preprocess

    summary = preprocess(ctx, limit=args.limit)
    print(render_preprocess_summary(summary), file=sys.stderr)
    return summary


def render_preprocess_summary(summary: dict) -> str:
    """The one-screen end of a (long) preprocess run, for the operator."""
    seconds = max(float(summary.get("seconds") or 0.0), 1e-9)
    reasons = ", ".join(f"{why}: {n}" for why, n in summary.get("reasons", {}).items()) or "-"
    replanned = summary.get("replanned_chunks", 0)
    return "\n".join(
        [
            f"preprocess: {summary['files']} files in {seconds:.1f} s "
            f"({summary['files'] / seconds:.1f} files/s, {summary['rows'] / seconds:,.0f} rows/s)",
            f"  accepted    {summary['accepted']:>7}  raw rows {summary['rows']:,}"
            f"  StateVector rows written {summary['vectors_written']:,}",
            f"  rejected    {summary['rejected']:>7}  {reasons}",
            f"  duplicates  {summary['duplicates']:>7}",
            *(
                [f"  replanned   {replanned:>7}  chunks (samples outside a file's announced time)"]
                if replanned
                else []
            ),
            f"  time spent  {summary.get('timings', {})}",
        ]
    )


class NotReproducedError(RuntimeError):
    """``etl train --reproduce`` got other held-out metrics than the version recorded."""

    def __init__(self, summary: dict[str, Any]) -> None:
        differing = ", ".join(
            f"{name} {d['recorded']} -> {d['reproduced']}"
            for name, d in summary["differing"].items()
        )
        super().__init__(
            f"{summary['machine_type']} v{summary['version']} not reproduced: {differing}"
        )
        self.summary = summary


def _cmd_train(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.train import reproduce, train

    if args.reproduce is not None:
        if args.version is None:
            raise ValueError("--reproduce TYPE needs --version N")
        outcome = reproduce(ctx, args.reproduce, args.version)
        if not outcome["reproduced"]:
            raise NotReproducedError(outcome)
        print(
            f"train {args.reproduce} v{args.version}: reproduced from {outcome['training_data']}"
            f" (macro-F1 {outcome['macro_f1']:.4f}, every held-out metric as recorded)",
            file=sys.stderr,
        )
        return outcome
    if args.if_due:  # what a scheduled step runs: train only the types etl run would
        from etl.steps.tick import due_types

        due = due_types(ctx)
        if not due:
            print("train: no machine type due", file=sys.stderr)
            return {"types": {}, "skipped": "no machine type due"}
        summary = train(ctx, only=due)
    else:
        summary = train(ctx)
    for machine_type, outcome in summary["types"].items():
        line = (
            outcome.get("reason")
            if not outcome.get("trained")
            else (
                f"v{outcome['version']} macro-F1 {outcome['macro_f1']:.3f} "
                f"({'champion' if outcome['champion'] else 'challenger'}: {outcome['reason']})"
            )
        )
        print(f"train {machine_type}: {line}", file=sys.stderr)
    return summary


def _cmd_infer(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.infer import infer

    summary = infer(ctx)
    for machine_type, outcome in summary["types"].items():
        line = (
            f"{outcome['machines']} machines, {outcome['batches']} batches, "
            f"{outcome['seconds']:,} seconds scored with {outcome['model']}"
            if outcome.get("scored")
            else outcome.get("reason")
        )
        print(f"infer {machine_type}: {line}", file=sys.stderr)
    if "elapsed_s" in summary:
        print(
            f"infer: {summary['segments']:,} segments and {summary['cycles']:,} cycles "
            f"rebuilt in {summary['elapsed_s']} s",
            file=sys.stderr,
        )
    return summary


def _cmd_export(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.export import export

    return export(ctx)


def _cmd_compact(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.compact import compact

    return compact(ctx, days=args.days, full_vacuum=args.full_vacuum)


def _cmd_run(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from etl.steps.tick import run_tick

    summary = run_tick(ctx)  # TickFailedError after all steps ran: exit 1
    for name, outcome in summary["steps"].items():
        print(f"run: {name:<10} {outcome['seconds']:>7.1f} s", file=sys.stderr)
    print(f"run: tick done in {summary['seconds']:.1f} s", file=sys.stderr)
    return summary


def _cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    from etl.report import load_report_data, render_terminal, write_report
    from etl.state.status import read_status

    config = ctx.config
    data = load_report_data(
        config.results.url,
        config.results.db_schema,
        config.pipeline.name,
        read_status(ctx.state_engine, config.pipeline.name),
        [(a.uuid, a.type) for a in config.assets],
    )
    path = write_report(data, Path(args.out or f"reports/{config.pipeline.name}"))
    print(render_terminal(data))
    print(f"report: {path}")
    return EXIT_OK


def _cmd_promote(ctx: Context, args: argparse.Namespace) -> int:
    from etl.steps.promote import promote

    _print_summary(promote(ctx, args.type, args.version, args.reason))
    return EXIT_OK


def _cmd_reprocess(ctx: Context, args: argparse.Namespace) -> int:
    pipeline = ctx.config.pipeline.name
    with ctx.uow() as uow:
        moved = uow.batches.reset(
            pipeline,
            machine_uuid=args.machine,
            key=args.key,
            ts_from=args.ts_from.timestamp() if args.ts_from else None,
            ts_to=args.ts_to.timestamp() if args.ts_to else None,
        )
        uow.commit()
    _print_summary({"reset": moved})
    return EXIT_OK


def _utc_time(text: str) -> datetime:
    """An ISO date or date-time, taken as UTC when it names no zone."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from etl.state.status import read_status

    status = read_status(ctx.state_engine, ctx.config.pipeline.name)
    if args.json:
        json.dump(status, sys.stdout, indent=None, default=str)
        sys.stdout.write("\n")
        return EXIT_OK
    counts: dict[str, int] = {}
    for batch in status["batches"]:
        counts[batch["status"]] = counts.get(batch["status"], 0) + 1
    print(f"pipeline {ctx.config.pipeline.name}: {len(status['batches'])} batches")
    for state, count in sorted(counts.items()):
        print(f"  {state:<13} {count}")
    for key in ("models", "inference_runs", "exports"):
        print(f"{key.replace('_', ' ')}: {len(status[key])}")
    return EXIT_OK


def _cmd_stack(ctx: Context, args: argparse.Namespace) -> int:
    from etl import stack

    services = stack.build_stack(ctx.config)
    if args.action == "up":
        for line in stack.up(services):
            print(line)
        return EXIT_OK
    if args.action == "down":
        for line in stack.down(services):
            print(line)
        return EXIT_OK
    rows = stack.status(services)
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            pid = row["pid"] if row["pid"] is not None else "-"
            print(f"{row['service']:<9} 127.0.0.1:{row['port']:<6} pid {pid!s:<8} {row['state']}")
    return EXIT_OK if all(row["state"] == "ready" for row in rows) else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every command of the contract is present."""
    parser = argparse.ArgumentParser(
        prog="etl", description="Activity and cycle analytics for surface-mining machines."
    )
    parser.add_argument("--config", required=True, help="pipeline YAML file")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument(
        "--log-json", action="store_true", help="log one JSON object per line (on stderr)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    helps = {
        "discover": "read the batch catalog, register new raw files in the state store",
        "preprocess": "validate + resample registered files into StateVectors",
        "train": "train and register a model when enough data is available",
        "infer": "score new StateVectors with the current model",
        "export": "write activities and cycles to the results database",
        "run": "one recurring tick: all of the above, in order",
    }
    built = {
        "discover": _cmd_discover,
        "preprocess": _cmd_preprocess,
        "train": _cmd_train,
        "infer": _cmd_infer,
        "export": _cmd_export,
        "run": _cmd_run,
    }
    parsers = {}
    for name in PIPELINE_STEPS:
        parsers[name] = commands.add_parser(name, help=helps[name])
        parsers[name].set_defaults(handler=built[name])
    parsers["preprocess"].add_argument("--limit", type=int, help="at most this many files")
    parsers["train"].add_argument(
        "--if-due",
        action="store_true",
        help="only the types whose retraining is due (as etl run decides): for schedulers",
    )
    parsers["train"].add_argument(
        "--reproduce",
        metavar="TYPE",
        choices=sorted(ACTIVITIES),
        help="fit version --version of TYPE again from its stored training data; "
        "fails unless every held-out metric is as recorded (registers nothing)",
    )
    parsers["train"].add_argument("--version", type=int, metavar="N", help="with --reproduce")

    status = commands.add_parser("status", help="the state store (batches, models, runs, exports)")
    status.add_argument("--json", action="store_true", help="as JSON (the contract's format)")
    status.set_defaults(handler=_cmd_status)

    report = commands.add_parser("report", help="an HTML report of the results, and a summary")
    report.add_argument("--out", help="folder of index.html (default: reports/PIPELINE)")
    report.set_defaults(handler=_cmd_report)

    reprocess = commands.add_parser("reprocess", help="reset files so they flow again")
    reprocess.add_argument("--machine", help="one machine UUID")
    reprocess.add_argument("--key", help="one raw file key")
    reprocess.add_argument("--from", dest="ts_from", type=_utc_time, help="data from (ISO, UTC)")
    reprocess.add_argument("--to", dest="ts_to", type=_utc_time, help="data before (ISO, UTC)")
    reprocess.set_defaults(handler=_cmd_reprocess)

    compact = commands.add_parser(
        "compact", help="compact the Delta tables' recent partitions and vacuum old files"
    )
    compact.add_argument("--days", type=int, help="days of partitions (maintenance.compact_days)")
    compact.add_argument(
        "--full-vacuum", action="store_true", help="list the folders (finds uncommitted files)"
    )
    compact.set_defaults(handler=_cmd_compact)

    promote = commands.add_parser(
        "promote", help="make a model version the champion of its type (e.g. roll back)"
    )
    promote.add_argument("--type", required=True, choices=sorted(ACTIVITIES), help="machine type")
    promote.add_argument("--version", required=True, type=int, help="our version number (vN)")
    promote.add_argument("--reason", help="kept with the model in the state store")
    promote.set_defaults(handler=_cmd_promote)

    simulate = commands.add_parser("simulate", help="write a simulated fleet's raw batches")
    simulate.add_argument("--machines", type=int, help="default: every configured asset")
    simulate.add_argument("--days", type=float, default=1.0)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--start", type=_utc_time, help="ISO date/time (default: start_date)")
    simulate.set_defaults(handler=_cmd_simulate)

    stack = commands.add_parser("stack", help="the local stack: PostgreSQL, Kafka, S3, MLflow")
    stack.add_argument("action", choices=("up", "down", "status"))
    stack.add_argument("--json", action="store_true", help="status as JSON")
    stack.set_defaults(handler=_cmd_stack)
    return parser


def _one_line(exc: BaseException) -> str:
    """An exception as one line: SQLAlchemy and driver errors are long."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is returned (and used by the console script)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json_lines=args.log_json)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"etl: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.log_json or config.observability.log_format == "json":
        context = {"pipeline": config.pipeline.name, "command": args.command}
        configure_logging(args.log_level, json_lines=True, context=context)
    ctx = bootstrap(config)
    try:
        with terminate_on_sigterm():
            if args.command in JOBS:
                return _run_job(ctx, args)
            return int(args.handler(ctx, args))
    except Exception as exc:
        log.debug("command failed", exc_info=True)
        print(f"etl {args.command}: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except TerminatedError as exc:
        print(f"etl {args.command}: {exc}", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        ctx.close()


def _run_job(ctx: Context, args: argparse.Namespace) -> int:
    """A pipeline job: its summary on stdout, then its metrics, whether it worked or not."""
    started = time.monotonic()
    summary: dict[str, Any] = {}
    ok = False
    try:
        summary = args.handler(ctx, args)
        ok = True
        _print_summary(summary)
        return EXIT_OK
    except Exception as exc:
        summary = getattr(exc, "summary", None) or {"error": _one_line(exc)}
        raise
    finally:
        emit_job_metrics(
            ctx, args.command, summary, ok=ok, seconds=round(time.monotonic() - started, 1)
        )


if __name__ == "__main__":
    sys.exit(main())
