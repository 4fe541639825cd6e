"""The search loop (nas.study.loop, run_study) on SQLite and journal files, without training: ``evaluate`` is
replaced by a fake whose numbers follow from the architecture key (one test keeps the real ``evaluate`` for the
constraint path, where nothing trains). Covers dedup, surplus trials, waiting for a twin, infeasible candidates,
the abort after consecutive failures, and resuming a study to its total."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from nas.config import StudyConfig, load_preset
from nas.errors import UserError
from nas.measure import Cost, Evaluation, Latency, ProxyResult, Runtime
from nas.measure import evaluation as evaluate_module
from nas.objectives import (
    GFLOPS,
    LATENCY,
    MAP,
    change,
    counts_for_front,
    dominates,
    pareto_front,
    reference_trial,
    values_of,
)
from nas.space import Architecture
from nas.study import (
    StudyRun,
    TrialReport,
    TrialRunner,
    completed,
    loop,
    make_sampler,
    open_storage,
    open_study,
    run_study,
)
from nas.study.records import record, runtime_record
from nas.study.storage import Storage, expected_optuna_warnings

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY_SPACE = """\
description: one insertion point, two choices (tests)
base: yolo11n.yaml
points:
  - {name: down_p2, layers: [1], choices: [Conv, GhostV2]}
"""


def write_preset(tmp_path: Path, name: str = "tiny", space: str = "tiny_space.yaml", extra: str = "") -> StudyConfig:
    """Write a preset (and the two-architecture space) into ``tmp_path`` and load it."""
    (tmp_path / "tiny_space.yaml").write_text(TINY_SPACE)
    preset = tmp_path / f"{name}.yaml"
    preset.write_text(
        f"description: loop tests\nspace: {space}\nscale: n\ndata: synthetic\n"
        "synthetic: {train_images: 8, val_images: 4, imgsz: 64, seed: 0}\n"
        "imgsz: 160\ntrain: {epochs: 1, imgsz: 64, batch: 4, nbs: 4}\n"
        "latency: {runs: 1, warmup: 1, threads: 1}\nsampler: random\n" + extra
    )
    return load_preset(str(preset))


def numbers_of(arch: Architecture) -> tuple[float, float, float]:
    """Deterministic (mAP, GFLOPs, latency) of an architecture: GhostV2 at down_p2 costs 4 GFLOPs, else 6 (plus
    less than 0.1 from the key), so a 5-GFLOPs bound separates the two architectures of the tiny space."""
    h = int(arch.key, 16)
    gflops = (4.0 if arch.as_dict().get("down_p2") == "GhostV2" else 6.0) + (h % 100) / 1000
    return 0.1 + (h // 100 % 800) / 1000, gflops, 50.0 + (h // 100_000 % 1000) / 10


@dataclass
class FakeEvaluate:
    """Stands in for ``nas.measure.evaluate``: records the keys it is asked for; ``outcomes`` (one per call, then
    "ok") can make a call fail ("error") or come out infeasible ("infeasible")."""

    outcomes: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    trained_anyway: list[str] = field(default_factory=list)  # keys evaluated with train_infeasible=True

    def __call__(
        self,
        arch: Architecture,
        cfg: StudyConfig,
        runtime: Runtime,
        seed: int,
        run_name: str,
        train_infeasible: bool = False,
    ) -> Evaluation:
        outcome = self.outcomes[len(self.calls)] if len(self.calls) < len(self.outcomes) else "ok"
        self.calls.append(arch.key)
        if train_infeasible:
            self.trained_anyway.append(arch.key)
        if outcome == "error":
            return Evaluation(phases={"build_s": 0.01}, error=f"train: RuntimeError: boom #{len(self.calls)}")
        map50_95, gflops, latency_ms = numbers_of(arch)
        params = 2_000_000 + int(arch.key, 16) % 100_000
        ev = Evaluation(
            cost=Cost(params=params, gflops=gflops, imgsz=cfg.imgsz),
            latency=Latency(latency_ms, 1.0, 20, 1, "cpu", "fake CPU", "float32", 1, cfg.imgsz, torch.__version__),
            violations=cfg.constraints.violations(gflops, params, latency_ms),
            phases={"build_s": 0.01, "cost_s": 0.01, "latency_s": 0.01},
        )
        if outcome == "infeasible":
            ev.violations = {"max_gflops": 0.5}
        if ev.feasible or train_infeasible:  # like the real one: an infeasible candidate is not trained
            ev.proxy = ProxyResult(map50_95, map50_95 + 0.1, train_s=1.0, val_s=0.5, epochs=1)
            ev.phases.update(train_s=1.0, val_s=0.5)
        return ev


MAX_TRIALS_PER_TEST = 40
MAX_POLLS_PER_TEST = 200


@pytest.fixture(autouse=True)
def _bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken loop fails fast instead of hanging: short waits, at most MAX_TRIALS_PER_TEST trials and
    MAX_POLLS_PER_TEST rounds of the loop."""
    monkeypatch.setattr(loop, "TWIN_POLL_S", 0.01)
    monkeypatch.setattr(loop, "TWIN_MAX_WAIT_S", 1.0)
    real_run_one = TrialRunner.run_one
    calls = []

    def run_one(self: TrialRunner) -> TrialReport | None:
        calls.append(1)
        assert len(calls) <= MAX_TRIALS_PER_TEST, "the loop keeps asking for trials"
        return real_run_one(self)

    monkeypatch.setattr(TrialRunner, "run_one", run_one)
    # every round of run() and every twin poll recovers dead trials first: count the rounds
    monkeypatch.setattr(loop, "TAIL_POLL_S", 0.01)
    real_recover = loop.recover_dead_trials
    rounds = []

    def recover(study: optuna.Study, storage: Storage, all_running: bool = False) -> list[int]:
        rounds.append(1)
        assert len(rounds) <= MAX_POLLS_PER_TEST, "the loop keeps polling"
        return real_recover(study, storage, all_running)

    monkeypatch.setattr(loop, "recover_dead_trials", recover)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEvaluate:
    f = FakeEvaluate()
    monkeypatch.setattr(loop, "evaluate", f)
    return f


@pytest.fixture
def db_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the study files go: memory (/dev/shm) where there is one, so that SQLite's and the journal's many
    fsyncs do not wait on a busy disk; ``tmp_path`` otherwise."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="nas-loop-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sqlite(db_dir: Path) -> Iterator[Storage]:
    storage = open_storage(f"sqlite:///{db_dir / 's.db'}", worker=True)
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture
def journal(db_dir: Path) -> Storage:
    """A journal-file storage: what several workers on one host share (no heartbeats, no lock)."""
    return open_storage(f"journal:///{db_dir / 'journal.log'}", worker=True)


def new_study(cfg: StudyConfig, storage: Storage, name: str = "loop") -> optuna.Study:
    study = open_study(cfg, storage, name)
    study.sampler = make_sampler("random", 0)
    return study


def runner(study: optuna.Study, cfg: StudyConfig, storage: Storage, total: int, tmp_path: Path) -> TrialRunner:
    return TrialRunner(study, cfg, Runtime(run_root=tmp_path / "runs"), storage, seed=0, total=total)


def other_worker(storage: Storage, name: str = "loop") -> optuna.Study:
    """A second Study object on the same storage: what another worker sees."""
    return optuna.load_study(study_name=name, storage=storage.backend)


def states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.get_trials(deepcopy=False)]


def brute_front(study: optuna.Study) -> list[int]:
    """The front by definition: feasible, trained, not reused, dominated by no other such trial."""
    pool = [
        t
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if counts_for_front(t) and all(v <= 0 for v in t.constraints.values())
    ]
    return sorted(t.number for t in pool if not any(dominates(values_of(o), values_of(t)) for o in pool if o is not t))


# ---------------------------------------------------------------------------------------------------------------
# dedup


def test_a_repeated_architecture_reuses_the_first_result(tmp_path: Path, sqlite: Storage, fake: FakeEvaluate) -> None:
    cfg = write_preset(tmp_path, extra="constraints: {max_gflops: 5.0}\n")  # Conv (6 GFLOPs) infeasible
    assert cfg.space.size() == 2
    study = new_study(cfg, sqlite)
    for op in ("Conv", "GhostV2", "Conv", "Conv", "GhostV2"):
        study.enqueue_trial({"down_p2": op})
    reports: list[tuple[TrialReport, int, int]] = []
    ran = runner(study, cfg, sqlite, 5, tmp_path).run(lambda r, done, total: reports.append((r, done, total)))

    assert ran == 5 and states(study) == [TrialState.COMPLETE] * 5
    conv, ghost = cfg.space.architecture({"down_p2": "Conv"}).key, cfg.space.architecture({"down_p2": "GhostV2"}).key
    assert fake.calls == [conv, ghost]  # each architecture evaluated once
    trials = study.get_trials()
    assert [t.user_attrs.get("dedup_of") for t in trials] == [None, None, 0, 0, 1]
    for dup in trials[2:]:
        original = trials[dup.user_attrs["dedup_of"]]
        assert dup.values == original.values and dup.params == original.params
        assert dup.constraints == original.constraints
        assert record(dup, "phases") == {}
        copied = {k: v for k, v in dup.user_attrs.items() if k not in ("phases", "dedup_of")}
        assert copied == {k: v for k, v in original.user_attrs.items() if k != "phases"}
    assert trials[0].constraints["max_gflops"] > 0 and trials[0].user_attrs["trained"] is False
    assert trials[1].constraints["max_gflops"] < 0 and trials[1].user_attrs["trained"] is True
    assert trials[1].constraints["max_gflops"] == pytest.approx((values_of(trials[1])[GFLOPS] - 5.0) / 5.0)
    # the front: the feasible original, not its reuse (which has the very same values)
    assert [t.number for t in pareto_front(study)] == [1] == brute_front(study)
    assert [r.status for r, _, _ in reports] == ["infeasible (not trained)", "ok", "dedup", "dedup", "dedup"]
    assert reports[2][0].summary.endswith("(= #0)") and reports[4][0].summary.endswith("(= #1)")
    assert [(done, total) for _, done, total in reports] == [(i, 5) for i in range(1, 6)]


def test_the_sampler_repeating_itself_is_deduplicated(tmp_path: Path, sqlite: Storage, fake: FakeEvaluate) -> None:
    cfg = write_preset(tmp_path)
    study = new_study(cfg, sqlite)
    assert runner(study, cfg, sqlite, 6, tmp_path).run() == 6  # 6 trials, 2 architectures
    trials = study.get_trials()
    keys = [t.user_attrs["key"] for t in trials]
    originals = [t for t in trials if "dedup_of" not in t.user_attrs]
    assert len(fake.calls) == len(set(fake.calls)) == len(set(keys)) == len(originals) <= 2
    assert sorted(fake.calls) == sorted(t.user_attrs["key"] for t in originals)
    for t in trials:
        if "dedup_of" in t.user_attrs:
            first = trials[t.user_attrs["dedup_of"]]
            assert first.number < t.number and first.user_attrs["key"] == t.user_attrs["key"]
            assert "dedup_of" not in first.user_attrs and t.values == first.values


# ---------------------------------------------------------------------------------------------------------------
# several workers: surplus trials, twins


def test_a_trial_beyond_the_total_is_failed_as_surplus(tmp_path: Path, journal: Storage, fake: FakeEvaluate) -> None:
    cfg, storage = write_preset(tmp_path), journal
    study = new_study(cfg, storage)
    other = other_worker(storage)
    theirs = other.ask()  # another worker runs trial 0: with it the study reaches a total of 1

    assert runner(study, cfg, storage, 1, tmp_path).run_one() is None
    mine = study.get_trials()[1]
    assert mine.state == TrialState.FAIL and mine.user_attrs["fail_reason"].startswith("surplus")
    assert "key" not in mine.user_attrs and fake.calls == []  # not even sampled
    assert study.get_trials()[theirs.number].state == TrialState.RUNNING  # theirs untouched

    # with room for one more, the same situation runs a trial
    report = runner(study, cfg, storage, 2, tmp_path).run_one()
    assert report is not None and report.values is not None and len(fake.calls) == 1
    assert study.get_trials()[2].state == TrialState.COMPLETE
    # and run() stops without asking once complete + running trials make up the total (journal: no heartbeats)
    assert runner(study, cfg, storage, 2, tmp_path).run() == 0
    assert len(study.get_trials()) == 3


def test_a_later_running_trial_does_not_make_mine_surplus(tmp_path: Path, journal: Storage, fake: FakeEvaluate) -> None:
    cfg, storage = write_preset(tmp_path), journal
    study = new_study(cfg, storage)
    other = other_worker(storage)
    r = runner(study, cfg, storage, 1, tmp_path)
    real_ask = study.ask

    def ask_then_other_asks(*args: object, **kwargs: object) -> optuna.Trial:
        trial = real_ask(*args, **kwargs)
        other.ask()  # another worker asks right after me: its trial is later, mine goes ahead
        return trial

    study.ask = ask_then_other_asks  # type: ignore[method-assign]
    report = r.run_one()
    assert report is not None and report.number == 0 and report.values is not None
    assert states(study) == [TrialState.COMPLETE, TrialState.RUNNING]


@dataclass
class FakeClock:
    """Replaces ``time`` in nas.study.loop: ``sleep`` advances ``monotonic`` and runs ``on_sleep``."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: list = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for hook in self.on_sleep:
            hook(len(self.sleeps))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(
        loop, "time", SimpleNamespace(monotonic=c.monotonic, perf_counter=c.perf_counter, sleep=c.sleep)
    )
    monkeypatch.setattr(loop, "TWIN_POLL_S", 2.0)
    monkeypatch.setattr(loop, "TWIN_MAX_WAIT_S", 20.0)
    return c


def twin_setup(
    tmp_path: Path, storage: Storage
) -> tuple[StudyConfig, Storage, optuna.Study, optuna.Study, optuna.Trial, str]:
    """Another worker runs trial 0 on GhostV2; this worker's next trial (1) is queued with the same choice."""
    cfg = write_preset(tmp_path)
    study = new_study(cfg, storage)
    other = other_worker(storage)
    key = cfg.space.architecture({"down_p2": "GhostV2"}).key
    twin = other.ask()
    twin.suggest_categorical("down_p2", ["Conv", "GhostV2"])
    twin.set_user_attr("key", key)
    study.enqueue_trial({"down_p2": "GhostV2"})
    return cfg, storage, study, other, twin, key


def finish_twin(other: optuna.Study, twin: optuna.Trial, key: str) -> None:
    for k, v in {"key": key, "trained": True, "summary": "twin", "model_yaml": "# twin"}.items():
        twin.set_user_attr(k, v)
    twin.set_constraint("max_gflops", -0.25)
    other.tell(twin, [0.42, 4.2, 42.0])


def test_a_running_twin_is_waited_for_and_reused(
    tmp_path: Path, journal: Storage, fake: FakeEvaluate, clock: FakeClock
) -> None:
    cfg, storage, study, other, twin, key = twin_setup(tmp_path, journal)
    clock.on_sleep.append(lambda n: finish_twin(other, twin, key) if n == 3 else None)  # done after 3 polls

    report = runner(study, cfg, storage, 5, tmp_path).run_one()
    assert report is not None and report.status == "dedup" and report.number == 1
    assert clock.sleeps == [2.0, 2.0, 2.0]  # polled while the twin ran, stopped once it completed
    assert fake.calls == []  # never evaluated itself
    mine = study.get_trials()[1]
    assert mine.state == TrialState.COMPLETE and mine.user_attrs["dedup_of"] == 0
    assert mine.values == [0.42, 4.2, 42.0] and mine.constraints == {"max_gflops": -0.25}
    assert record(mine, "model_yaml") == "# twin"


def test_a_twin_that_never_finishes_is_given_up(
    tmp_path: Path, journal: Storage, fake: FakeEvaluate, clock: FakeClock
) -> None:
    cfg, storage, study, _, _, key = twin_setup(tmp_path, journal)
    r = runner(study, cfg, storage, 5, tmp_path)
    assert r.wait_for_twin(1, key) is None
    assert clock.now == pytest.approx(20.0) and clock.sleeps == [2.0] * 10  # the whole TWIN_MAX_WAIT_S
    assert fake.calls == []

    clock.sleeps.clear()
    report = r.run_one()  # gives up again, then evaluates the architecture itself
    assert report is not None and report.status == "ok" and len(clock.sleeps) == 10
    assert fake.calls == [key]
    mine = study.get_trials()[1]
    assert mine.state == TrialState.COMPLETE and "dedup_of" not in mine.user_attrs


def test_a_twin_that_fails_is_not_waited_for_further(
    tmp_path: Path, journal: Storage, fake: FakeEvaluate, clock: FakeClock
) -> None:
    cfg, storage, study, other, twin, key = twin_setup(tmp_path, journal)
    clock.on_sleep.append(lambda n: other.tell(twin, state=TrialState.FAIL) if n == 1 else None)
    report = runner(study, cfg, storage, 5, tmp_path).run_one()
    assert report is not None and report.status == "ok" and clock.sleeps == [2.0]
    assert fake.calls == [key]


def test_only_an_earlier_running_trial_with_the_same_key_is_a_twin(
    tmp_path: Path, journal: Storage, clock: FakeClock
) -> None:
    cfg, storage, study, _, twin, key = twin_setup(tmp_path, journal)
    r = runner(study, cfg, storage, 5, tmp_path)
    other_key = cfg.space.architecture({"down_p2": "Conv"}).key
    assert r.wait_for_twin(twin.number, key) is None  # not earlier than itself
    assert r.wait_for_twin(1, other_key) is None  # another architecture
    assert clock.sleeps == []


def test_an_earlier_trial_that_has_not_recorded_its_key_yet_is_waited_for(
    tmp_path: Path, journal: Storage, fake: FakeEvaluate, clock: FakeClock
) -> None:
    """Two workers asked at the same moment: the earlier trial records its key only after the later one looked
    (the race that trained one architecture twice on PostgreSQL); the later trial still reuses its result."""
    cfg = write_preset(tmp_path)
    study = new_study(cfg, storage := journal)
    other = other_worker(storage)
    key = cfg.space.architecture({"down_p2": "GhostV2"}).key
    twin = other.ask()  # asked, key not recorded yet
    study.enqueue_trial({"down_p2": "GhostV2"})

    def other_worker_goes_on(n: int) -> None:
        if n == 2:
            twin.suggest_categorical("down_p2", ["Conv", "GhostV2"])
            twin.set_user_attr("key", key)
        if n == 5:
            finish_twin(other, twin, key)

    clock.on_sleep.append(other_worker_goes_on)
    report = runner(study, cfg, storage, 5, tmp_path).run_one()
    assert report is not None and report.status == "dedup" and fake.calls == []
    assert clock.sleeps == [0.2, 0.2, 2.0, 2.0, 2.0]  # short polls until the key shows, then the twin's pace


def test_an_earlier_trial_that_never_records_a_key_is_given_up(
    tmp_path: Path, journal: Storage, fake: FakeEvaluate, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "KEYLESS_MAX_WAIT_S", 1.0)
    cfg = write_preset(tmp_path)
    study = new_study(cfg, journal)
    other_worker(journal).ask()  # its worker died before sampling
    study.enqueue_trial({"down_p2": "GhostV2"})
    r = runner(study, cfg, journal, 5, tmp_path)
    report = r.run_one()
    assert report is not None and report.status == "ok" and len(fake.calls) == 1
    assert clock.sleeps == [0.2] * 5
    study.enqueue_trial({"down_p2": "Conv"})
    assert r.run_one() is not None and clock.sleeps == [0.2] * 5  # the dead trial is not waited for again


def test_a_completed_twin_is_reused_without_waiting(
    tmp_path: Path, journal: Storage, fake: FakeEvaluate, clock: FakeClock
) -> None:
    cfg, storage, study, other, twin, key = twin_setup(tmp_path, journal)
    finish_twin(other, twin, key)
    found = runner(study, cfg, storage, 5, tmp_path).wait_for_twin(7, key)
    assert isinstance(found, FrozenTrial) and found.number == 0 and clock.sleeps == []


def test_the_last_trials_of_other_workers_are_waited_for(
    tmp_path: Path, db_dir: Path, fake: FakeEvaluate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With heartbeats (an RDB storage shared by workers), a worker whose total is made up by another's running
    trial stays until that trial completes (it might go stale and be queued again), then stops."""
    cfg = write_preset(tmp_path)
    url = f"sqlite:///{db_dir / 'heartbeats.db'}"
    with expected_optuna_warnings():
        storage = Storage(url, RDBStorage(url, heartbeat_interval=60, grace_period=120))
    assert storage.heartbeats and not storage.exclusive
    study = new_study(cfg, storage)
    other = other_worker(storage)
    with expected_optuna_warnings():
        theirs = other.ask()
    storage.backend.record_heartbeat(storage.trial_id(other, theirs.number))  # alive
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:  # their trial completes while this worker waits
            other.tell(theirs, [0.3, 5.0, 50.0])

    monkeypatch.setattr(loop, "time", SimpleNamespace(monotonic=lambda: 0.0, perf_counter=lambda: 0.0, sleep=sleep))
    assert runner(study, cfg, storage, 1, tmp_path).run() == 0
    assert sleeps == [loop.TAIL_POLL_S] * 2 and fake.calls == []
    assert states(study) == [TrialState.COMPLETE]


def test_run_fails_and_retries_a_dead_workers_trial(tmp_path: Path, sqlite: Storage, fake: FakeEvaluate) -> None:
    """SQLite (one worker): a RUNNING trial found by run() is a dead worker's; it is failed and run again."""
    cfg = write_preset(tmp_path)
    study = new_study(cfg, sqlite)
    dead = study.ask()  # a worker died while training it
    dead.suggest_categorical("down_p2", ["Conv", "GhostV2"])
    assert runner(study, cfg, sqlite, 2, tmp_path).run() == 2
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and "worker died" in trials[0].user_attrs["fail_reason"]
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[0].params
    assert states(study).count(TrialState.COMPLETE) == 2 and TrialState.RUNNING not in states(study)


def test_a_retried_trial_records_its_own_constraint_values(tmp_path: Path, sqlite: Storage, fake: FakeEvaluate) -> None:
    cfg = write_preset(tmp_path, extra="constraints: {max_latency_ms: 200.0}\n")
    study = new_study(cfg, sqlite)
    dead = study.ask()
    dead.suggest_categorical("down_p2", ["Conv", "GhostV2"])
    dead.set_constraint("max_latency_ms", 0.05)  # its worker measured 210 ms, then died before telling the values
    assert runner(study, cfg, sqlite, 1, tmp_path).run() == 1
    (retry,) = completed(study)
    own = (values_of(retry)[LATENCY] - 200.0) / 200.0  # measured again by the retry: under the bound
    assert own < 0 and retry.user_attrs["violations"] == {"max_latency_ms": pytest.approx(own)}
    assert retry.user_attrs["feasible"] is True
    assert retry.constraints == {"max_latency_ms": pytest.approx(own)}  # fails: still 0.05, the dead trial's
    assert pareto_front(study) == [retry]


# ---------------------------------------------------------------------------------------------------------------
# constraints, with the real evaluate


def test_infeasible_candidates_are_recorded_untrained_and_left_off_the_front(
    tmp_path: Path, sqlite: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[object] = []

    def no_training(*args: object, **kwargs: object) -> ProxyResult:
        trained.append(args)
        raise AssertionError("an infeasible candidate was trained")

    monkeypatch.setattr(evaluate_module, "train_proxy", no_training)
    assert loop.evaluate is evaluate_module.evaluate  # the real one
    # at 160 px YOLO11n costs about 0.4 GFLOPs: a 0.1-GFLOPs bound excludes both architectures
    cfg = write_preset(tmp_path, extra="constraints: {max_gflops: 0.1}\n")
    study = open_study(cfg, sqlite, "tiny", runtime_record(cfg, "cpu", None))
    study.enqueue_trial({"down_p2": "Conv"})
    study.enqueue_trial({"down_p2": "GhostV2"})
    outcome = run_study(cfg, sqlite, StudyRun(trials=2, study_name="tiny", run_dir=tmp_path / "runs"))

    assert trained == [] and outcome.ran == 2
    trials = outcome.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert len({t.user_attrs["key"] for t in trials}) == 2 and all("dedup_of" not in t.user_attrs for t in trials)
    for t in trials:
        v = values_of(t)
        assert v[MAP] == 0.0 and v[GFLOPS] > 0.1 and v[LATENCY] > 0
        assert t.user_attrs["trained"] is False and t.user_attrs["feasible"] is False
        assert set(t.constraints) == {"max_gflops"}
        assert t.constraints["max_gflops"] == pytest.approx((v[GFLOPS] - 0.1) / 0.1) and t.constraints["max_gflops"] > 0
        assert t.user_attrs["violations"] == t.constraints
        assert "train_s" not in record(t, "phases") and "latency_s" in record(t, "phases")
    assert outcome.front == [] and pareto_front(outcome.study) == [] and outcome.study.best_trials == []
    assert not (tmp_path / "runs" / "tiny" / "trial_0").exists()


# ---------------------------------------------------------------------------------------------------------------
# failures


@pytest.fixture
def smoke() -> StudyConfig:
    """The shipped smoke preset: a space far too large for the few trials here to repeat an architecture."""
    return load_preset("smoke")


def test_consecutive_failures_abort_the_run(
    tmp_path: Path, sqlite: Storage, fake: FakeEvaluate, smoke: StudyConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "MAX_CONSECUTIVE_FAILURES", 3)
    fake.outcomes = ["error"] * 10
    study = new_study(smoke, sqlite)
    with pytest.raises(UserError, match=r"^3 consecutive trials failed; last: failed: train: RuntimeError: boom #3"):
        runner(study, smoke, sqlite, 10, tmp_path).run()
    trials = study.get_trials()
    assert len(trials) == 3 == len(fake.calls)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert [t.user_attrs["fail_reason"] for t in trials] == [f"train: RuntimeError: boom #{i}" for i in (1, 2, 3)]
    assert all(t.values is None for t in trials)


@pytest.mark.parametrize("middle", ["ok", "infeasible"])
def test_a_success_resets_the_failure_count(
    tmp_path: Path,
    sqlite: Storage,
    fake: FakeEvaluate,
    smoke: StudyConfig,
    monkeypatch: pytest.MonkeyPatch,
    middle: str,
) -> None:
    monkeypatch.setattr(loop, "MAX_CONSECUTIVE_FAILURES", 3)
    fake.outcomes = ["error", "error", middle, "error", "error", "error", "ok"]
    study = new_study(smoke, sqlite)
    with pytest.raises(UserError, match="3 consecutive trials failed"):
        runner(study, smoke, sqlite, 10, tmp_path).run()
    F, C = TrialState.FAIL, TrialState.COMPLETE
    assert states(study) == [F, F, C, F, F, F] and len(fake.calls) == 6


def test_failures_below_the_limit_do_not_abort(
    tmp_path: Path, sqlite: Storage, fake: FakeEvaluate, smoke: StudyConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "MAX_CONSECUTIVE_FAILURES", 3)
    fake.outcomes = ["error", "error", "ok", "error", "error", "ok"]
    study = new_study(smoke, sqlite)
    assert runner(study, smoke, sqlite, 2, tmp_path).run() == 6
    assert states(study).count(TrialState.COMPLETE) == 2 and states(study).count(TrialState.FAIL) == 4


@pytest.mark.parametrize(
    ("exc", "reason"),
    [(KeyboardInterrupt(), "interrupted (SIGINT)"), (UserError("bad input"), "UserError: bad input")],
)
def test_an_interrupted_trial_is_failed_not_left_running(
    tmp_path: Path,
    sqlite: Storage,
    smoke: StudyConfig,
    monkeypatch: pytest.MonkeyPatch,
    exc: BaseException,
    reason: str,
) -> None:
    def interrupted(*args: object, **kwargs: object) -> Evaluation:
        raise exc

    monkeypatch.setattr(loop, "evaluate", interrupted)
    study = new_study(smoke, sqlite)
    with pytest.raises(type(exc)):
        runner(study, smoke, sqlite, 3, tmp_path).run()
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == reason


# ---------------------------------------------------------------------------------------------------------------
# run_study end to end


def test_run_study_resumes_to_the_total(tmp_path: Path, db_dir: Path, fake: FakeEvaluate) -> None:
    cfg = write_preset(tmp_path)
    url = f"sqlite:///{db_dir / 'resume.db'}"
    run = StudyRun(trials=3, study_name="resume", run_dir=tmp_path / "runs")

    storage = open_storage(url, worker=True)
    try:
        first = run_study(cfg, storage, run)
    finally:
        storage.close()
    assert first.ran == 3 and states(first.study) == [TrialState.COMPLETE] * 3

    # a worker that died mid-trial leaves a RUNNING trial behind
    dead = optuna.load_study(study_name="resume", storage=url).ask()
    logs: list[str] = []
    progress: list[tuple[int, int]] = []
    storage = open_storage(url, worker=True)
    try:
        outcome = run_study(
            cfg, storage, StudyRun(trials=6, study_name="resume", run_dir=tmp_path / "runs"),
            on_trial=lambda _r, done, total: progress.append((done, total)), log=logs.append,
        )  # fmt: skip
        again = run_study(cfg, storage, StudyRun(trials=6, study_name="resume", run_dir=tmp_path / "runs"))
    finally:
        storage.close()

    assert any(f"#{dead.number} of a dead worker" in line for line in logs), logs
    assert any("3/6 complete trials" in line for line in logs), logs
    assert outcome.ran == 3 and progress == [(4, 6), (5, 6), (6, 6)]
    trials = outcome.study.get_trials()
    st = [t.state for t in trials]
    assert st.count(TrialState.COMPLETE) == 6 and st.count(TrialState.FAIL) == 1
    assert TrialState.RUNNING not in st and TrialState.WAITING not in st
    assert (
        trials[dead.number].state == TrialState.FAIL and "worker died" in trials[dead.number].user_attrs["fail_reason"]
    )
    assert any(t.system_attrs.get("failed_trial") == dead.number for t in trials)  # queued again, and run
    assert again.ran == 0 and len(again.study.get_trials()) == len(trials)

    # evaluated once per architecture; the rest reused
    originals = [t for t in trials if t.state == TrialState.COMPLETE and "dedup_of" not in t.user_attrs]
    assert sorted(fake.calls) == sorted(t.user_attrs["key"] for t in originals)
    assert (
        [t.number for t in outcome.front]
        == [t.number for t in pareto_front(outcome.study)]
        == brute_front(outcome.study)
    )
    assert outcome.front and all("dedup_of" not in t.user_attrs for t in outcome.front)


def test_run_study_on_the_smoke_space_never_leaves_a_running_trial(
    tmp_path: Path, sqlite: Storage, fake: FakeEvaluate, smoke: StudyConfig
) -> None:
    outcome = run_study(smoke, sqlite, StudyRun(trials=8, run_dir=tmp_path / "runs", sampler="tpe"))
    st = states(outcome.study)
    assert outcome.ran == 8 and st == [TrialState.COMPLETE] * 8
    assert len(fake.calls) == 8 and len(set(fake.calls)) == 8
    assert outcome.study.study_name == "smoke"
    assert (
        [t.number for t in outcome.front]
        == [t.number for t in pareto_front(outcome.study)]
        == brute_front(outcome.study)
    )
    for t in outcome.study.get_trials():
        assert values_of(t) == dict(zip((MAP, GFLOPS, LATENCY), numbers_of(smoke.space.sample(t)), strict=True))


# the stock model as trial 0


def test_a_new_study_starts_with_the_stock_model_as_its_reference(
    tmp_path: Path, sqlite: Storage, fake: FakeEvaluate
) -> None:
    cfg = write_preset(tmp_path, extra="constraints: {max_gflops: 5.0}\n")  # the stock model (6 GFLOPs) violates it
    outcome = run_study(cfg, sqlite, StudyRun(trials=5, run_dir=tmp_path / "runs"))
    trials = outcome.study.get_trials()
    ref = trials[0]
    assert ref.user_attrs["reference"] is True and ref.params == {"down_p2": "Conv"}
    assert ref.user_attrs["summary"] == "stock" and ref.user_attrs["trained"]  # trained despite its violation
    assert fake.trained_anyway == [ref.user_attrs["key"]]
    assert ref.number not in [t.number for t in outcome.front]  # infeasible: never on the front
    assert reference_trial(outcome.study).number == 0
    flagged = [t.number for t in trials if t.user_attrs.get("reference")]
    assert flagged == [0], "a reuse of the stock result must not be flagged as the reference"
    for t in trials[1:]:
        assert t.user_attrs["vs_stock"] == pytest.approx(
            {k: round(v, 4) for k, v in change(values_of(t), values_of(ref)).items()}
        )
    ghost = next(t for t in trials if t.params["down_p2"] == "GhostV2")
    assert ghost.user_attrs["vs_stock"]["GFLOPs"] < 0  # GhostV2 is cheaper than the stock conv here


def test_a_resumed_study_gets_no_second_reference(tmp_path: Path, db_dir: Path, fake: FakeEvaluate) -> None:
    cfg = write_preset(tmp_path)
    url = f"sqlite:///{db_dir / 'r.db'}"
    for total in (2, 4):
        storage = open_storage(url, worker=True)
        try:
            study = run_study(cfg, storage, StudyRun(trials=total, study_name="r", run_dir=tmp_path / "runs")).study
        finally:
            storage.close()
    assert [t.number for t in study.get_trials() if t.user_attrs.get("reference")] == [0]


def test_a_space_without_the_stock_layer_has_no_reference(tmp_path: Path, sqlite: Storage, fake: FakeEvaluate) -> None:
    (tmp_path / "ghost_only.yaml").write_text(TINY_SPACE.replace("[Conv, GhostV2]", "[GhostV2, ACmix]"))
    cfg = write_preset(tmp_path, space="ghost_only.yaml")
    logs: list[str] = []
    outcome = run_study(cfg, sqlite, StudyRun(trials=2, run_dir=tmp_path / "runs"), log=logs.append)
    assert any("not in this space" in line and "no reference trial" in line for line in logs), logs
    assert reference_trial(outcome.study) is None
    assert not any(t.user_attrs.get("reference") or "vs_stock" in t.user_attrs for t in outcome.study.get_trials())
