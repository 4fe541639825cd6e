"""The search loop: ask a trial, sample its architecture, reuse a twin's result or evaluate it, tell the values.

Constraints from the preset go through ``trial.set_constraint``; a candidate that violates one is recorded with
its cost and latency, mAP50-95 0.0 and ``trained = False``, and is never trained. Several workers may share one
study (see ``storage``): the trial total counts their running trials, and an architecture another worker is
training is waited for and reused (``dedup_of``) instead of trained twice. Each trial's model YAML is also stored as
its Optuna artifact (``artifacts``) for optuna-dashboard; failing to write that copy never fails the trial.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ..config import StudyConfig
from ..errors import UserError
from ..measure import Runtime, evaluate
from ..objectives import GFLOPS, LATENCY, MAP, change, pareto_front, reference_trial, to_list, values_of
from ..space import Architecture
from .artifacts import open_store, upload_model_yaml
from .queries import completed, find_duplicate, running
from .records import record, records, set_attrs, trial_attrs
from .storage import Heartbeat, Storage, expected_optuna_warnings, recover_dead_trials

MAX_CONSECUTIVE_FAILURES = 20
TWIN_POLL_S = 2.0
KEYLESS_POLL_S = 0.2
TWIN_MAX_WAIT_S = 3600.0
KEYLESS_MAX_WAIT_S = 60.0  # a trial sets its key right after it is asked; longer means its worker died there
TAIL_POLL_S = 5.0


@dataclass
class TrialReport:
    """What one finished trial reports to the progress display; ``values`` by objective name, None if it failed."""

    number: int
    summary: str
    values: dict[str, float] | None
    seconds: float
    front: int
    status: str
    vs_stock: dict[str, float] | None = None  # objectives.change against the reference trial, once it exists
    latency_noisy: bool = False  # its latency stayed more spread than the preset's max_spread


@dataclass
class TrialRunner:
    """Runs the trials of one study for this worker: what to evaluate (``cfg``), where (``runtime``), the storage
    it shares with other workers, the base seed (trial n trains with seed + n) and the study's trial total."""

    study: optuna.Study
    cfg: StudyConfig
    runtime: Runtime
    storage: Storage
    seed: int
    total: int
    _store: FileSystemArtifactStore | None = field(default=None, init=False, repr=False)
    _keyless_dead: set[int] = field(default_factory=set, init=False, repr=False)  # never recorded their key

    def __post_init__(self) -> None:
        self._store = open_store(self.storage.url)

    def run_one(self) -> TrialReport | None:
        """Ask for one trial, evaluate (or reuse) its architecture, tell the result; return its report.

        Returns None, telling the trial failed as surplus, when other workers' running trials already make up the
        ``total`` wanted (workers asked at the same moment).
        """
        t0 = time.perf_counter()
        with expected_optuna_warnings():
            trial = self.study.ask()
        trial_id = self.storage.trial_id(self.study, trial.number)
        try:
            with Heartbeat(self.storage, trial_id):
                ahead = [t for t in running(self.study) if t.number < trial.number]
                if len(completed(self.study)) + len(ahead) >= self.total:
                    trial.set_user_attr("fail_reason", "surplus: other workers were already running the last trials")
                    self.study.tell(trial, state=TrialState.FAIL)
                    return None
                arch = self.cfg.space.sample(trial)
                trial.set_user_attr("key", arch.key)  # visible to other workers at once, for wait_for_twin
                return self._evaluate_and_tell(trial, arch, t0)
        except (UpdateFinishedTrialError, ValueError) as e:
            if self.storage.backend.get_trial(trial_id).state.is_finished():
                # another worker failed it as stale (our heartbeats did not reach the database); its retry is queued
                status = "lost: failed as stale by another worker, queued again"
                return TrialReport(trial.number, "-", None, time.perf_counter() - t0, self._front(), status)
            _fail(self.study, trial, f"{type(e).__name__}: {e}")
            raise
        except BaseException as e:  # Ctrl-C, a storage error, bad input: never leave the trial RUNNING
            reason = "interrupted (SIGINT)" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
            _fail(self.study, trial, reason)
            raise

    def wait_for_twin(self, number: int, key: str) -> FrozenTrial | None:
        """Wait while another worker's earlier RUNNING trial has architecture ``key``; return it if it completed.

        Workers sharing a study draw the same architecture now and then; the later trial reuses the earlier one's
        result instead of training it twice. An earlier running trial that has not recorded its key yet (asked at
        the same moment) is waited for too, up to KEYLESS_MAX_WAIT_S. Dead workers' trials are failed meanwhile
        (RDB heartbeats); a twin that never finishes (a dead journal worker) is given up after TWIN_MAX_WAIT_S and
        the trial trains itself.
        """
        start = time.monotonic()
        while (waited := time.monotonic() - start) < TWIN_MAX_WAIT_S:
            earlier = [t for t in running(self.study) if t.number < number]
            twins = [t for t in earlier if t.user_attrs.get("key") == key]
            # an earlier trial asked at the same moment may not have recorded its key yet: it could be our twin
            unknown = [t.number for t in earlier if "key" not in t.user_attrs and t.number not in self._keyless_dead]
            if unknown and waited >= KEYLESS_MAX_WAIT_S:
                self._keyless_dead.update(unknown)  # its worker died before sampling: never wait for it again
                unknown = []
            if not twins and not unknown:
                break
            time.sleep(TWIN_POLL_S if twins else KEYLESS_POLL_S)
            recover_dead_trials(self.study, self.storage)
        return find_duplicate(self.study, key)

    def _front(self) -> int:
        return len(pareto_front(self.study))

    def _evaluate_and_tell(self, trial: optuna.Trial, arch: Architecture, t0: float) -> TrialReport:
        duplicate = self.wait_for_twin(trial.number, arch.key)
        if duplicate is not None:
            return self._reuse(trial, arch, duplicate, t0)
        is_reference = bool(trial.user_attrs.get("reference"))
        seed, name = self.seed + trial.number, f"trial_{trial.number}"
        ev = evaluate(arch, self.cfg, self.runtime, seed, name, train_infeasible=is_reference)
        t_store = time.perf_counter()
        trial_id = self.storage.trial_id(self.study, trial.number)
        attrs = trial_attrs(arch, self.cfg, self.runtime, ev)
        set_attrs(trial, self.storage.backend, trial_id, attrs)
        self._upload_yaml(trial, attrs["model_yaml"])
        for name, violation in ev.violations.items():
            trial.set_constraint(name, violation)
        phases = {**attrs["phases"], "storage_s": round(time.perf_counter() - t_store, 4)}
        set_attrs(trial, self.storage.backend, trial_id, {"phases": phases})
        values: dict[str, float] | None = None
        if ev.error:
            status = f"failed: {ev.error}"
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            assert ev.cost is not None and ev.latency is not None
            map50_95 = ev.proxy.map50_95 if ev.proxy else 0.0
            values = {MAP: map50_95, GFLOPS: ev.cost.gflops, LATENCY: ev.latency.median_ms}
            status = "reference (stock)" if is_reference else "ok" if ev.proxy else "infeasible (not trained)"
            vs_stock = self._vs_stock(trial, values)
            self.study.tell(trial, to_list(values))
            seconds, noisy = time.perf_counter() - t0, ev.latency.noisy
            return TrialReport(trial.number, arch.summary(), values, seconds, self._front(), status, vs_stock, noisy)
        return TrialReport(trial.number, arch.summary(), values, time.perf_counter() - t0, self._front(), status)

    def _vs_stock(self, trial: optuna.Trial, values: dict[str, float]) -> dict[str, float] | None:
        """Record and return ``values`` against the reference trial (None while there is none)."""
        reference = reference_trial(self.study)
        if reference is None or reference.number == trial.number:
            return None
        delta = {k: round(v, 4) for k, v in change(values, values_of(reference)).items()}
        trial.set_user_attr("vs_stock", delta)
        return delta

    def _reuse(self, trial: optuna.Trial, arch: Architecture, duplicate: FrozenTrial, t0: float) -> TrialReport:
        """Tell ``trial`` the values, records and constraints of ``duplicate`` (same architecture, same study)."""
        copied = {k: v for k, v in records(duplicate).items() if k not in ("phases", "dedup_of", "reference")}
        trial_id = self.storage.trial_id(self.study, trial.number)
        set_attrs(trial, self.storage.backend, trial_id, {**copied, "dedup_of": duplicate.number, "phases": {}})
        if record(duplicate, "model_yaml"):
            self._upload_yaml(trial, record(duplicate, "model_yaml"))
        for name, violation in duplicate.constraints.items():
            trial.set_constraint(name, violation)
        values = values_of(duplicate)
        vs_stock = self._vs_stock(trial, values)
        self.study.tell(trial, to_list(values))
        summary = f"{arch.summary()} (= #{duplicate.number})"
        noisy = bool(duplicate.user_attrs.get("latency_noisy"))
        return TrialReport(trial.number, summary, values, time.perf_counter() - t0, self._front(), "dedup", vs_stock,
                           noisy)  # fmt: skip

    def _upload_yaml(self, trial: optuna.Trial, text: str) -> None:
        """Store the model YAML as the trial's artifact, warning (not failing the trial) if the store refuses it."""
        if self._store is None:
            return
        try:
            upload_model_yaml(self._store, trial, text)
        except OSError as e:  # the database holds the YAML; the artifact is only the dashboard's copy
            warnings.warn(f"trial {trial.number}: model YAML not stored as an artifact: {e}", stacklevel=2)

    def run(self, on_trial: Callable[[TrialReport, int, int], None] | None = None) -> int:
        """Run trials until the study has ``total`` COMPLETE ones (counting other workers' running ones); return
        how many this call ran. ``on_trial(report, complete, total)`` is called after each.

        Raises:
            UserError: too many consecutive candidate failures (something is wrong beyond one candidate).
        """
        ran, failures = 0, 0
        while True:
            recover_dead_trials(self.study, self.storage)
            done, in_flight = len(completed(self.study)), len(running(self.study))
            if done >= self.total:
                return ran
            if done + in_flight >= self.total:
                if not self.storage.heartbeats:
                    return ran  # SQLite: nobody else runs; journal: a dead worker's trial needs --fail-running
                # other workers run the last trials; stay until they complete, or go stale and are queued again
                time.sleep(TAIL_POLL_S)
                continue
            report = self.run_one()
            if report is None:
                continue
            ran += 1
            failures = failures + 1 if report.values is None else 0
            if on_trial:
                on_trial(report, len(completed(self.study)), self.total)
            if failures >= MAX_CONSECUTIVE_FAILURES:
                raise UserError(f"{failures} consecutive trials failed; last: {report.status}")


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Tell ``trial`` failed with ``reason``, unless it is finished already (best effort: the storage may be down)."""
    with contextlib.suppress(Exception):
        trial.set_user_attr("fail_reason", reason)
    with contextlib.suppress(Exception):
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
