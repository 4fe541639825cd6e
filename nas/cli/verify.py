"""``python -m nas.verify``: train the best Pareto trials and the stock reference again from scratch with the preset's
``verify:`` schedule, store the verified mAP beside the proxy's and print how well the proxy ranked them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import optuna

from ..errors import UserError
from ..measure import resolve_device
from ..objectives import GFLOPS, LATENCY, MAP, value
from ..study import DEFAULT_STORAGE, load_study
from ..study.verify import DEFAULT_TOP, Outcome, make_plan, results, select, study_preset, verify_front
from . import EXIT_INTERRUPTED, ArgumentParser, cli, log


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``nas.verify``."""
    p = ArgumentParser(prog="python -m nas.verify", description=__doc__)
    p.add_argument("--study", required=True, help="study name in the storage")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument(
        "--top", type=int, default=DEFAULT_TOP, help=f"best Pareto trials to verify (default: {DEFAULT_TOP})"
    )
    p.add_argument("--epochs", type=int, help="override the length of the preset's verify: schedule")
    p.add_argument("--data", help="a local Ultralytics data YAML to verify on instead of the study's dataset")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--run-dir", default="nas_runs", help="where the run folders live (default: nas_runs)")
    return p


def table(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial], verification: str) -> str:
    """Return the verified trials as a text table: number, proxy and verified mAP50-95, GFLOPs, latency, architecture
    (the stock reference marked); a trial without a record under ``verification`` shows '-'."""
    attrs = study.user_attrs
    lines = [f"{'trial':>5}  {'proxy mAP50-95':>14}  {'verified':>8}  {GFLOPS:>7}  {LATENCY:>10}  architecture"]
    for t in trials:
        record = results(study, t.number, attrs).get(verification)
        got = f"{record[MAP]:.4f}" if record else "-"
        summary = t.user_attrs.get("summary", "") + (" (reference)" if t.user_attrs.get("reference") else "")
        lines.append(
            f"{t.number:>5}  {value(t, MAP):>14.4f}  {got:>8}  {value(t, GFLOPS):>7.3f}  {value(t, LATENCY):>10.2f}  "
            f"{summary}"
        )
    return "\n".join(lines)


def agreement_line(outcome: Outcome) -> str:
    """Return one line with the rank agreement of proxy and verified mAP50-95 (or why there is none)."""
    a = outcome.agreement
    if a is None:
        return "rank agreement: needs at least two verified trials"

    def fmt(x: float | None) -> str:
        return "undefined (a constant side)" if x is None else f"{x:+.3f}"

    where = "" if outcome.plan.study_dataset else " (verified on another dataset than the search's)"
    coefficients = f"Spearman {fmt(a['spearman'])}, Kendall {fmt(a['kendall'])}"
    return f"rank agreement of proxy and verified {MAP} over {a['n']} trials: {coefficients}{where}"


@cli
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nas.verify``; return the exit status (0 ok, 1 a trial failed to train, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    study = load_study(args.storage, args.study)
    trials = select(study, args.top)
    plan = make_plan(study, study_preset(study, args.data), args.epochs, resolve_device(args.device))
    log(
        f"verification {plan.id}: {len(trials)} trial(s) from scratch, {plan.schedule['epochs']} epochs at "
        f"{plan.schedule.get('imgsz')} px on {plan.dataset.description}, device {plan.device}"
    )
    try:
        outcome = verify_front(study, plan, trials, Path(args.run_dir) / study.study_name, log=log)
    except KeyboardInterrupt:
        log("interrupted: the verified trials are stored; run again to verify the rest")
        return EXIT_INTERRUPTED
    print(table(study, trials, plan.id))
    print(agreement_line(outcome))
    log(
        f"done: {len(outcome.trained)} trained, {len(outcome.skipped)} already verified (skipped), "
        f"{len(outcome.failed)} failed; stored in study {study.study_name!r} under verification {plan.id}"
    )
    return 1 if outcome.failed else 0
