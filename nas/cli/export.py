"""``python -m nas.export``: write a chosen trial's model YAML (the one it trained), or list the Pareto set."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path

import optuna

from ..caveats import study_caveats
from ..errors import UserError
from ..objectives import (
    GFLOPS,
    LATENCY,
    MAP,
    PICKS,
    better_and_worse,
    change,
    pareto_front,
    pick,
    reference_trial,
    to_list,
    value,
    values_of,
    within,
)
from ..study import DEFAULT_STORAGE, completed, load_study
from ..study.records import record
from ..study.verify import covering, results, verified
from . import ArgumentParser, cli, format_change, log


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``nas.export``."""
    p = ArgumentParser(prog="python -m nas.export", description=__doc__)
    p.add_argument("--study", required=True, help="study name in the storage (the preset name by default)")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--out", help="where to write the model YAML")
    p.add_argument("--trial", type=int, help="export this trial number")
    p.add_argument(
        "--pick",
        choices=PICKS,
        default="knee",
        help="which Pareto trial to export (default: knee); mAP50-95 is ranked by the verified values when one "
        "nas.verify verification on the study's dataset covers every candidate",
    )
    p.add_argument("--max-gflops", type=float, help="only consider Pareto trials at or under this many GFLOPs")
    p.add_argument("--max-latency-ms", type=float, help="only consider Pareto trials at or under this latency")
    p.add_argument("--list", action="store_true", help="print the Pareto set as a table and exit")
    return p


def table(trials: list[optuna.trial.FrozenTrial], reference: optuna.trial.FrozenTrial | None = None) -> str:
    """Return the trials as a text table: number, the three objectives, the change against the stock model,
    params, key and summary; the ``reference`` (stock) trial is listed too, marked, when given."""
    listed = {t.number: t for t in [*trials, *([reference] if reference else [])]}
    rows = sorted(listed.values(), key=lambda t: (-value(t, MAP), t.number))
    ref = values_of(reference) if reference else None
    lines = [
        f"{'trial':>5}  {MAP:>8}  {GFLOPS:>7}  {LATENCY:>10}  {'vs stock':<40}  {'params':>10}  {'key':<12}  "
        "architecture"
    ]
    for t in rows:
        a, v = t.user_attrs, values_of(t)
        is_reference = reference is not None and t.number == reference.number
        vs = "reference (stock model)" if is_reference else format_change(change(v, ref) if ref else None)
        lines.append(
            f"{t.number:>5}  {v[MAP]:>8.4f}  {v[GFLOPS]:>7.3f}  {v[LATENCY]:>10.2f}  {vs:<40}  "
            f"{a.get('params', 0):>10,}  {a.get('key', ''):<12}  {a.get('summary', '')}"
        )
    return "\n".join(lines)


def versus_stock(trial: optuna.trial.FrozenTrial, reference: optuna.trial.FrozenTrial | None) -> str:
    """Return one line saying how ``trial`` compares with the stock model, and on which objectives it beats it."""
    if reference is None:
        return "no reference trial of the stock model in this study"
    if trial.number == reference.number:
        return f"this is the stock model (trial {reference.number}, the study's reference)"
    v, r = values_of(trial), values_of(reference)
    better, worse = better_and_worse(v, r)
    verdict = f"better on {', '.join(better) or 'nothing'}; worse on {', '.join(worse) or 'nothing'}"
    return f"vs the stock model (trial {reference.number}): {format_change(change(v, r))}: {verdict}"


def with_verified_map(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial], verification: str
) -> list[optuna.trial.FrozenTrial]:
    """Return copies of ``trials`` whose mAP50-95 is their verified value under ``verification`` (each must have
    one), so the picks rank by it; GFLOPs and latency stay as measured."""
    attrs = study.user_attrs
    out = []
    for t in trials:
        ranked = copy.copy(t)
        ranked.values = to_list({**values_of(t), MAP: results(study, t.number, attrs)[verification][MAP]})
        out.append(ranked)
    return out


def header(study: optuna.Study, trial: optuna.trial.FrozenTrial, out: Path, ranked_by: str | None = None) -> str:
    """Return the comment block that starts an exported YAML; ``ranked_by``: the verification whose values the
    pick ranked mAP50-95 by (None: the proxy's)."""
    a, v, reference = trial.user_attrs, values_of(trial), reference_trial(study)
    lat_info = record(trial, "latency", {})
    where = f"{lat_info.get('device_name', a.get('device'))} ({lat_info.get('dtype', '')})"
    check = verified(study, trial.number, ranked_by)
    checked = f" | verified {MAP} {check[MAP]:.4f} (from scratch, {check['epochs']} epochs)" if check else ""
    rule = [f"# picked with {MAP} ranked by the verified values (verification {ranked_by})"] if ranked_by else []
    return "\n".join(
        [
            f"# exported by nas.export from study {study.study_name!r}, trial {trial.number}",
            f"# {MAP} {v[MAP]:.4f} (proxy, train imgsz {a.get('train_imgsz')}){checked} | {v[GFLOPS]:.4f} GFLOPs | "
            f"{v[LATENCY]:.2f} ms "
            f"latency at {a.get('imgsz')} px on {where}",
            *rule,
            f"# params {a.get('params', 0):,} | architecture {a.get('key')}: {a.get('summary')}",
            f"# {versus_stock(trial, reference)}",
            f"# operators: {', '.join(a.get('operators', [])) or 'none (stock model)'}",
            *(f"# warning: {w}" for w in study_caveats(study)),
            "# train it in full (nas-yolo is Ultralytics' yolo command with this project's operators registered):",
            f"#   {train_command(out)}",
            "",
        ]
    )


def train_command(out: Path) -> str:
    """Return the command that trains the exported YAML ``out`` in full on the user's data YAML."""
    return f"nas-yolo train model={out.name} data=data.yaml epochs=300"


def no_match(front: list[optuna.trial.FrozenTrial], max_gflops: float | None, max_latency_ms: float | None) -> str:
    """Return why no Pareto trial is within the bounds: the bounds asked for and the range the front covers."""
    asked = " and ".join(
        f"{flag} {bound:g}"
        for flag, bound in (("--max-gflops", max_gflops), ("--max-latency-ms", max_latency_ms))
        if bound is not None
    )
    gflops = [value(t, GFLOPS) for t in front]
    latency = [value(t, LATENCY) for t in front]
    return (
        f"no Pareto trial within {asked}: the front spans {min(gflops):.2f}–{max(gflops):.2f} GFLOPs and "
        f"{min(latency):.1f}–{max(latency):.1f} ms"
    )


@cli
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nas.export``; return the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    study = load_study(args.storage, args.study)
    front = pareto_front(study)
    if args.list:
        if not front:
            raise UserError(f"study {args.study!r} has no complete, trained trial yet")
        print(table(front, reference_trial(study)))
        for warning in study_caveats(study):
            log(f"warning: {warning}")
        return 0
    if not args.out:
        raise UserError("--out is required (or use --list)")
    ranked_by = None
    if args.trial is not None:
        trial = next((t for t in completed(study) if t.number == args.trial), None)
        if trial is None:
            raise UserError(f"study {args.study!r} has no complete trial {args.trial}")
    else:
        candidates = within(front, args.max_gflops, args.max_latency_ms)
        if not front:
            raise UserError(f"study {args.study!r} has no complete, trained trial yet")
        if not candidates:
            raise UserError(no_match(front, args.max_gflops, args.max_latency_ms))
        # one verification on the study's dataset covers every candidate: its values rank mAP (README, nas.verify)
        ranked_by = covering(study, [t.number for t in candidates])
        chosen = pick(with_verified_map(study, candidates, ranked_by) if ranked_by else candidates, args.pick)
        trial = next(t for t in candidates if t.number == chosen.number)
    out = Path(args.out)
    text = header(study, trial, out, ranked_by) + record(trial, "model_yaml")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from e
    log(f"wrote {out}: trial {trial.number} ({trial.user_attrs.get('summary')})")
    return 0
