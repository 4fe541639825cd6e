"""Several workers on one study, and workers that die: SQLite lock, SIGKILL resume, PostgreSQL scale-out."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from modules.slots import SLOTS
from nas.cli import search
from nas.config import load_preset
from nas.errors import UserError
from nas.study import open_storage, open_study
from nas.study.records import runtime_record
from tests.fast_smoke import fast_smoke_preset
from tests.servers import free_port

PG_STARTS = 3  # a port found free can be taken before PostgreSQL binds it

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT), "NAS_CACHE_DIR": str(tmp_path / "cache")}


def _preset(tmp_path: Path) -> str:
    """Return the path of the smoke preset these tests run (latency timed fast; written once per test)."""
    path = tmp_path / "smoke.yaml"
    return str(path if path.is_file() else fast_smoke_preset(tmp_path))


def _worker(tmp_path: Path, storage: str, trials: int, tag: str = "") -> subprocess.Popen:
    """Start ``python -m nas.search --study <the smoke preset>`` as a separate process (its stderr goes to a log
    file)."""
    preset, runs = _preset(tmp_path), str(tmp_path / "runs")
    argv = ["--study", preset, "--trials", str(trials), "--storage", storage, "--run-dir", runs]
    log = (tmp_path / f"worker{tag}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "nas.search", *argv], stdout=log, stderr=log, env=_env(tmp_path), cwd=tmp_path
    )


def _states(storage: str, name: str = "smoke") -> list[TrialState]:
    try:
        return [t.state for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)]
    except KeyError:  # not created yet
        return []


def _sampled_running(storage: str) -> bool:
    """True once a RUNNING trial has drawn its architecture (its key is stored right after sampling)."""
    try:
        trials = optuna.load_study(study_name="smoke", storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return False
    return any(t.state == TrialState.RUNNING and "key" in t.user_attrs for t in trials)


def test_a_second_sqlite_worker_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    first = open_storage(url, worker=True)
    try:
        with pytest.raises(UserError, match="SQLite takes one worker at a time"):
            open_storage(url, worker=True)
        assert search.main(["--study", "smoke", "--trials", "1", "--storage", url]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: another nas.search is running on"), err
    finally:
        first.close()
    open_storage(url, worker=True).close()  # released: the next worker gets it


def test_sigkill_mid_trial_then_resume_ends_with_exactly_the_trials_wanted(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    proc = _worker(tmp_path, storage, 4, "-killed")
    deadline = time.monotonic() + 300
    try:
        # kill the worker during its second trial: one COMPLETE, one RUNNING
        while time.monotonic() < deadline and proc.poll() is None:
            if _states(storage).count(TrialState.COMPLETE) >= 1 and _sampled_running(storage):
                break
            time.sleep(0.3)
        assert proc.poll() is None, (tmp_path / "worker-killed.log").read_text()
        before = {t.number: t.values for t in optuna.load_study(study_name="smoke", storage=storage).trials}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert TrialState.RUNNING in _states(storage)  # the dead worker's trial is left behind
    res = subprocess.run(
        [sys.executable, "-m", "nas.search", "--study", _preset(tmp_path), "--trials", "4", "--storage", storage,
         "--run-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "of a dead worker: marked failed, queued again" in res.stderr
    trials = optuna.load_study(study_name="smoke", storage=storage).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 4 and TrialState.RUNNING not in states, states
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and "worker died" in killed[0].user_attrs["fail_reason"]
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed[0].number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE  # the killed architecture ran again
    assert retried[0].params == killed[0].params
    for number, values in before.items():  # completed trials untouched
        if values is not None:
            assert trials[number].values == values


def test_journal_storage_runs_exports_and_recovers_running_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from nas.cli import export

    url = f"journal:///{tmp_path / 'journal.log'}"
    argv = ["--study", _preset(tmp_path), "--trials", "1", "--storage", url, "--run-dir", str(tmp_path / "runs")]
    assert search.main(argv) == 0
    assert export.main(["--study", "smoke", "--storage", url, "--list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == "0"  # trial 0 listed
    # a worker that died mid-trial: journal storage has no heartbeats, --fail-running recovers it
    study = optuna.load_study(study_name="smoke", storage=open_storage(url, worker=False).backend)
    dead = study.ask()
    assert search.main([*argv[:3], "2", *argv[4:], "--fail-running"]) == 0
    trials = optuna.load_study(study_name="smoke", storage=open_storage(url, worker=False).backend).trials
    assert trials[dead.number].state == TrialState.FAIL
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 2 and TrialState.RUNNING not in [
        t.state for t in trials
    ]


def _initdb() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _start_postgres(
    run_as: list[str], bindir: Path, data: Path, sock: Path, log: Path, ports: Callable[[], int]
) -> int:
    """Start the server of ``data`` on a loopback port from ``ports`` and return the port; a port taken between
    finding it free and the server binding it (another xdist worker) is replaced by the next, up to ``PG_STARTS``
    times.

    Raises:
        AssertionError: the server did not start, with the end of its log.
    """
    for _ in range(PG_STARTS):
        port, seen = ports(), log.stat().st_size if log.is_file() else 0
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50"
        started = subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
            capture_output=True,
        )
        if started.returncode == 0:
            return port
        text = log.read_bytes()[seen:].decode(errors="replace") if log.is_file() else ""
        if "already in use" not in text:
            break
    raise AssertionError(f"pg_ctl start failed ({started.returncode}): {started.stderr.decode()[-500:]}{text[-1500:]}")


@contextmanager
def _postgres_server(ports: Callable[[], int] = free_port) -> Iterator[int]:
    """Run a throwaway PostgreSQL server (user ``nas``, trust authentication) on a loopback port from ``ports``;
    yield its port. Skips without the binaries (Debian's ``postgresql`` package), unless NAS_REQUIRE_POSTGRES=1
    (CI), where it fails instead."""
    bindir = _initdb()
    if bindir is None:
        if os.environ.get("NAS_REQUIRE_POSTGRES") == "1":
            pytest.fail("NAS_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries (initdb) are installed")
        pytest.skip("no PostgreSQL server binaries (initdb): apt-get install postgresql")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install -e '.[postgres]'")
    # PostgreSQL refuses to run as root: then the server runs as the 'postgres' user, in a folder it can reach
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_root:
        os.chmod(base, 0o755)
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "nas", "--auth=trust", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield _start_postgres(run_as, bindir, data, sock, base / "log", ports)
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port; yields its plain ``postgresql://`` URL (SQLAlchemy 2.1
    opens it with psycopg 3)."""
    with _postgres_server() as port:
        yield f"postgresql://nas@127.0.0.1:{port}/postgres"


def test_a_postgres_server_whose_port_was_taken_starts_on_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], free_port()])
        with _postgres_server(lambda: next(ports)) as port:
            assert port != taken.getsockname()[1]
            import psycopg  # here: _postgres_server has skipped the test without it

            psycopg.connect(f"postgresql://nas@127.0.0.1:{port}/postgres").close()


def test_plain_and_psycopg2_postgres_urls_open_the_same_database(postgres: str) -> None:
    pytest.importorskip("psycopg2", reason="the psycopg2 driver: pip install -e '.[postgres]'")
    plain = open_storage(postgres, worker=False)
    assert plain.backend.engine.dialect.driver == "psycopg"  # SQLAlchemy 2.1's default for postgresql://
    optuna.create_study(study_name="both-drivers", storage=plain.backend)
    psycopg2_url = postgres.replace("postgresql://", "postgresql+psycopg2://", 1)
    other = open_storage(psycopg2_url, worker=False)
    assert other.backend.engine.dialect.driver == "psycopg2"
    assert [s.study_name for s in optuna.get_all_study_summaries(other.backend)] == ["both-drivers"]


def test_three_postgres_workers_share_one_study(postgres: str, tmp_path: Path) -> None:
    cfg = load_preset(_preset(tmp_path))
    storage = open_storage(postgres, worker=False)
    study = open_study(cfg, storage, "smoke", runtime_record(cfg, "cpu", None))
    stock = {p.name: SLOTS[p.kind].stock for p in cfg.space.points}
    study.enqueue_trial(stock)  # the same architecture twice: two workers pick them up at once
    study.enqueue_trial(stock)
    workers = [_worker(tmp_path, postgres, 6, str(i)) for i in range(3)]
    try:
        codes = [w.wait(timeout=900) for w in workers]
    finally:
        for w in workers:
            w.kill()
    logs = "\n".join((tmp_path / f"worker{i}.log").read_text() for i in range(3))
    assert codes == [0, 0, 0], logs
    trials = optuna.load_study(study_name="smoke", storage=postgres).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6, [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in trials]
    others = [t for t in trials if t.state != TrialState.COMPLETE]
    # nothing left running or queued; a failed trial can only be a worker's surplus ask at the very end
    assert all(t.state == TrialState.FAIL and "surplus" in t.user_attrs["fail_reason"] for t in others), others
    assert len({t.number for t in trials}) == len(trials)
    trained = [t.user_attrs["key"] for t in complete if "dedup_of" not in t.user_attrs]
    assert len(trained) == len(set(trained)), "an architecture was trained twice"
    stock_trials = [t for t in complete if t.params == stock]
    assert len(stock_trials) == 2 and sum("dedup_of" in t.user_attrs for t in stock_trials) == 1
