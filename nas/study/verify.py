"""Verifying the front: the best Pareto trials and the stock reference trained again from scratch with the preset's
``verify:`` schedule (default: the proxy's, 16 epochs), their verified mAP stored beside the proxy's, and how well
the proxy ranked them (Spearman and Kendall).

Where the results live. Optuna refuses any change to a finished trial, user attributes included, on every storage
(``UpdateFinishedTrialError`` from SQLite/RDB, journal and in-memory alike), so the results are **study** user
attributes, which may change at any time:

- ``verification``: {verification id: {"schedule", "dataset", "study_dataset", "nc", "seed", "order", "created",
  "trials", "agreement"}}, one entry per way of verifying. The id (12 hex digits) is a hash of the schedule, the
  dataset's description and the seed: verifying again the same way resumes that entry, a new ``--epochs`` or
  ``--data`` makes a new one and never overwrites another. ``study_dataset`` says whether it trained on the dataset
  the study searched (only then are its values comparable with the proxy's); ``agreement`` is {"n", "spearman",
  "kendall", "trials"} over every trial it verified (None with fewer than two).
- ``verified:<trial number>``: {verification id: {"mAP50-95", "mAP50", "schedule", "dataset", "seconds", "epochs",
  "device", "device_name", "seed", "nc", "finished"}}, one record per verification of that trial.

A trial's **verified mAP50-95** (``verified``) is its record under the most recent verification (highest
``order``) on the study's own dataset; a verification on another dataset is kept under its id and never stands in
for it. Readers (export, report) go through ``verified`` and ``covering``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial

from ..config import StudyConfig, load_preset
from ..data.datasets import Dataset
from ..errors import UserError
from ..measure import device_name, remove_run, train_proxy
from ..objectives import MAP, pareto_front, reference_trial, value
from ..ranking import kendall, spearman
from .records import record

VERIFICATIONS_ATTR = "verification"
TRIAL_ATTR_PREFIX = "verified:"
VERIFY_SEED = 0  # every verification trains with this seed (it joins the verification id)
DEFAULT_TOP = 5
_NC_LINE = re.compile(r"^nc:[^\n]*$", re.MULTILINE)


@dataclass(frozen=True)
class Plan:
    """One way of verifying: the schedule, the dataset, the device and seed, and the id they make."""

    schedule: dict[str, Any]
    dataset: Dataset
    study_dataset: bool  # trains on the dataset the study searched (comparable with the proxy values)
    device: str = "cpu"
    seed: int = VERIFY_SEED

    @property
    def id(self) -> str:
        """Return the verification id: the first 12 hex digits of a hash of schedule, dataset and seed."""
        return verification_id(self.schedule, self.dataset.description, self.seed)


@dataclass
class Outcome:
    """What ``verify_front`` did: the trials it trained, skipped (verified before) and failed, and the agreement."""

    plan: Plan
    trained: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    agreement: dict[str, Any] | None = None


def verification_id(schedule: Mapping[str, Any], dataset: str, seed: int = VERIFY_SEED) -> str:
    """Return the id of verifying with ``schedule`` on the dataset described by ``dataset`` with ``seed``."""
    blob = json.dumps({"schedule": dict(schedule), "dataset": dataset, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def study_preset(study: optuna.Study, data: str | None = None) -> StudyConfig:
    """Return the preset ``study`` was made with, its dataset replaced by the data YAML ``data`` when given.

    The preset file the study names (``preset_path``) is read when it still exists, so a ``verify:`` section added
    after the search counts; otherwise the copy stored in the study (``preset``).

    Raises:
        UserError: the study stores no preset, the preset or ``data`` is invalid, or (without ``data``) the preset
            now names another dataset than the one the study searched.
    """
    path, text = study.user_attrs.get("preset_path"), study.user_attrs.get("preset")
    if path and Path(path).is_file():
        cfg = load_preset(path, data=data)
    elif text:
        with tempfile.TemporaryDirectory(prefix="nas-verify-") as tmp:
            copy = Path(tmp) / f"{Path(path).stem if path else study.study_name}.yaml"
            copy.write_text(text)
            try:
                cfg = load_preset(str(copy), data=data)
            except UserError as e:
                raise UserError(f"the preset stored in study {study.study_name!r} ({path} is gone): {e}") from e
    else:
        raise UserError(f"study {study.study_name!r} stores no preset, so its schedule and dataset are unknown")
    searched = study.user_attrs.get("dataset")
    if data is None and searched is not None and cfg.dataset.description != searched:
        raise UserError(
            f"study {study.study_name!r} searched {searched}, but its preset {path} now gives "
            f"{cfg.dataset.description}; name the study's dataset with --data"
        )
    return cfg


def make_plan(
    study: optuna.Study, cfg: StudyConfig, epochs: int | None = None, device: str = "cpu", seed: int = VERIFY_SEED
) -> Plan:
    """Return the plan of verifying ``study`` with ``cfg``'s ``verify:`` schedule (``epochs`` overrides its length).

    Raises:
        UserError: ``epochs`` below 1.
    """
    if epochs is not None and epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    schedule = {**cfg.verify_schedule, **({"epochs": epochs} if epochs is not None else {})}
    same = cfg.dataset.description == study.user_attrs.get("dataset")
    return Plan(schedule, cfg.dataset, same, device, seed)


def select(study: optuna.Study, top: int = DEFAULT_TOP) -> list[FrozenTrial]:
    """Return the ``top`` Pareto trials of highest proxy mAP50-95 (ties: lower number), then the stock reference
    trial when the study has one and it is not among them.

    Raises:
        UserError: ``top`` below 1, or no trained trial on the front.
    """
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    front = pareto_front(study)
    if not front:
        raise UserError(f"study {study.study_name!r} has no complete, trained trial yet")
    chosen = sorted(front, key=lambda t: (-value(t, MAP), t.number))[:top]
    reference = reference_trial(study)
    if reference is not None and reference.number not in {t.number for t in chosen}:
        chosen.append(reference)
    return chosen


def adapt_nc(model_yaml: str, nc: int) -> str:
    """Return ``model_yaml`` (a trial's stored YAML, as ``Architecture.to_yaml`` writes it) with ``nc`` classes.

    Raises:
        ValueError: the YAML has no top-level ``nc:`` line.
    """
    if (yaml.safe_load(model_yaml) or {}).get("nc") == nc:
        return model_yaml
    adapted, count = _NC_LINE.subn(f"nc: {int(nc)}", model_yaml, count=1)
    if not count:
        raise ValueError("the model YAML has no top-level 'nc:' line")
    return adapted


def verifications(study: optuna.Study) -> dict[str, dict[str, Any]]:
    """Return the study's verifications by id (see the module docstring); empty when none ran."""
    return dict(study.user_attrs.get(VERIFICATIONS_ATTR) or {})


def results(study: optuna.Study, number: int, attrs: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Return trial ``number``'s verification records by verification id (``attrs``: the study's user attributes,
    when the caller already holds them)."""
    attrs = study.user_attrs if attrs is None else attrs
    return dict(attrs.get(f"{TRIAL_ATTR_PREFIX}{number}") or {})


def _own_dataset_ids(attrs: Mapping[str, Any]) -> list[str]:
    """Return the ids of the verifications on the study's own dataset, most recent first."""
    found = attrs.get(VERIFICATIONS_ATTR) or {}
    own = [vid for vid, v in found.items() if v.get("study_dataset")]
    return sorted(own, key=lambda vid: -found[vid].get("order", 0))


def verified(study: optuna.Study, number: int, verification: str | None = None) -> dict[str, Any] | None:
    """Return trial ``number``'s verified record, with its verification id under ``"verification"``: the one of
    ``verification`` when given, else the most recent on the study's own dataset; None when there is none."""
    attrs = study.user_attrs
    records = results(study, number, attrs)
    for vid in [verification] if verification else _own_dataset_ids(attrs):
        if vid in records:
            return {**records[vid], "verification": vid}
    return None


def covering(study: optuna.Study, numbers: Iterable[int]) -> str | None:
    """Return the most recent verification on the study's own dataset that verified every trial of ``numbers``
    (the one whose values may rank them against each other), or None."""
    attrs = study.user_attrs
    wanted = list(numbers)
    for vid in _own_dataset_ids(attrs):
        if wanted and all(vid in results(study, n, attrs) for n in wanted):
            return vid
    return None


def agreement(study: optuna.Study, verification: str) -> dict[str, Any] | None:
    """Return {"n", "spearman", "kendall", "trials"}: the rank agreement of proxy and verified mAP50-95 over every
    complete trial ``verification`` verified; None with fewer than two. A constant side gives None for its
    coefficients (undefined)."""
    attrs = study.user_attrs
    pairs = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        record = results(study, t.number, attrs).get(verification)
        if record is not None:
            pairs.append((t.number, value(t, MAP), record[MAP]))
    if len(pairs) < 2:
        return None
    proxy, true = [p[1] for p in pairs], [p[2] for p in pairs]
    rho, tau = spearman(proxy, true), kendall(proxy, true)
    return {
        "n": len(pairs),
        "spearman": None if rho != rho else round(rho, 4),
        "kendall": None if tau != tau else round(tau, 4),
        "trials": [p[0] for p in pairs],
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _register(study: optuna.Study, plan: Plan, numbers: Iterable[int]) -> None:
    """Create or update the study's entry for ``plan`` (what it is, which trials it was asked to verify)."""
    found = verifications(study)
    entry = found.get(plan.id) or {
        "schedule": plan.schedule,
        "dataset": plan.dataset.description,
        "study_dataset": plan.study_dataset,
        "nc": plan.dataset.nc,
        "seed": plan.seed,
        "order": 1 + max((v.get("order", 0) for v in found.values()), default=0),
        "created": _now(),
        "trials": [],
        "agreement": None,
    }
    entry["trials"] = sorted({*entry.get("trials", []), *numbers})
    study.set_user_attr(VERIFICATIONS_ATTR, {**found, plan.id: entry})


def verify_trial(trial: FrozenTrial, plan: Plan, run_root: Path) -> dict[str, Any]:
    """Train ``trial``'s stored model YAML from scratch as ``plan`` says, under ``run_root`` (its run folder and YAML
    removed afterwards), and return its verification record.

    Raises:
        UserError: the dataset cannot be prepared.
        ValueError: the trial stores no model YAML; whatever the training raises (shape error, NaN loss, ...).
    """
    text = record(trial, "model_yaml")
    if not text:
        raise ValueError(f"trial {trial.number} stores no model_yaml")
    name = f"verify_{plan.id}_trial_{trial.number}"
    run_dir, model_yaml = run_root / name, run_root / f"{name}.yaml"
    data = plan.dataset.data_yaml()
    t0 = time.perf_counter()
    try:
        model_yaml.parent.mkdir(parents=True, exist_ok=True)
        model_yaml.write_text(adapt_nc(text, plan.dataset.nc))
        result = train_proxy(model_yaml, data, plan.schedule, run_dir, plan.device, plan.seed)
    finally:
        remove_run(run_dir)
        model_yaml.unlink(missing_ok=True)
    return {
        MAP: result.map50_95,
        "mAP50": result.map50,
        "schedule": plan.schedule,
        "dataset": plan.dataset.description,
        "seconds": round(time.perf_counter() - t0, 2),
        "epochs": result.epochs,
        "device": plan.device,
        "device_name": device_name(plan.device),
        "seed": plan.seed,
        "nc": plan.dataset.nc,
        "finished": _now(),
    }


def verify_front(
    study: optuna.Study,
    plan: Plan,
    trials: Sequence[FrozenTrial],
    run_root: Path,
    log: Callable[[str], None] | None = None,
) -> Outcome:
    """Verify ``trials`` as ``plan`` says, storing each record as soon as it is trained; a trial this verification
    already holds is skipped, so an interrupted run resumes where it stopped. Ends by storing the agreement of proxy
    and verified values (``agreement``) in the verification's entry.

    A trial whose training fails is reported in ``Outcome.failed`` and stores nothing (a later run retries it).

    Raises:
        UserError: the dataset cannot be prepared. KeyboardInterrupt propagates (the trained trials are stored).
    """
    say = log or (lambda _msg: None)
    outcome = Outcome(plan)
    _register(study, plan, [t.number for t in trials])
    for i, t in enumerate(trials, 1):
        if plan.id in results(study, t.number):
            say(f"[{i}/{len(trials)}] trial {t.number}: already verified ({plan.id}), skipped")
            outcome.skipped.append(t.number)
            continue
        say(f"[{i}/{len(trials)}] trial {t.number}: training from scratch ({t.user_attrs.get('summary', '')})")
        try:
            record = verify_trial(t, plan, run_root)
        except (UserError, KeyboardInterrupt):
            raise
        except Exception as e:  # the candidate's own failure on the longer schedule: reported, not stored
            outcome.failed[t.number] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            say(f"trial {t.number}: verification failed: {outcome.failed[t.number]}")
            continue
        study.set_user_attr(f"{TRIAL_ATTR_PREFIX}{t.number}", {**results(study, t.number), plan.id: record})
        outcome.trained.append(t.number)
        say(f"trial {t.number}: verified {MAP} {record[MAP]:.4f} in {record['seconds']:.0f} s")
    outcome.agreement = agreement(study, plan.id)
    found = verifications(study)
    found[plan.id] = {**found[plan.id], "agreement": outcome.agreement}
    study.set_user_attr(VERIFICATIONS_ATTR, found)
    return outcome
