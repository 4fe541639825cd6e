"""Study storages: which URL opens what, how many workers may share it, and what happens to a dead worker's trial.

- ``sqlite:///FILE`` (the default): one worker at a time. The worker holds an exclusive lock on ``FILE.lock``
  (released by the kernel however the process dies), so a second worker is refused instead of racing on the
  file, and any trial left RUNNING is known to be a dead worker's: it is failed and retried at once. The worker
  puts the file in WAL journal mode (kept by the file), so readers such as optuna-dashboard never block its
  writes, and every connection waits up to SQLITE_BUSY_TIMEOUT_S for a lock instead of failing with "database is
  locked". WAL keeps recent writes in ``FILE-wal`` until a checkpoint: copy a study's file with its ``-wal`` and
  ``-shm`` files, or when no process has it open; WAL needs a local file system (not NFS).
- ``postgresql://...``, ``mysql://...`` (any SQLAlchemy URL but SQLite): many workers on many hosts. Trials
  send heartbeats; a trial whose heartbeat is older than the grace period is failed and retried
  (``RetryHeartbeatStaleTrialCallback``) by the next worker that asks for a trial.
- ``journal:///PATH`` (Optuna's journal file storage): many processes on one host, file-locked appends. It
  has no heartbeats, so a trial of a killed worker stays RUNNING until ``--fail-running`` is given.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from ..errors import UserError

HEARTBEAT_INTERVAL_S = 30
GRACE_PERIOD_S = 120
MAX_RETRIES = 2  # a trial that kills its worker three times is left failed
JOURNAL_PREFIX = "journal:///"
SQLITE_PREFIX = "sqlite:///"
SQLITE_BUSY_TIMEOUT_S = 120.0
# pysqlite's ``timeout`` is SQLite's busy timeout: how long a connection waits for another's lock
SQLITE_ENGINE = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
OWN_SYSTEM_ATTRS = ("constraints:", "nas:", "artifacts:")  # what a retry of a dead attempt must not inherit


@contextlib.contextmanager
def expected_optuna_warnings() -> Iterator[None]:
    """Silence the warnings Optuna gives for what this module does on purpose: heartbeats and their retry
    callback are experimental, and ``ask()`` warns that heartbeats are meant for ``Study.optimize`` (the search
    loop uses ask/tell and sends its own, see ``Heartbeat``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        yield


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a dead worker's trial (same architecture, queued as WAITING, at most ``max_retry`` times),
    without what belonged to the dead attempt: its constraint values (Optuna would refuse the retry's own, keeping
    a stale verdict on feasibility), its records and its artifacts (the retry writes its own)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Queue ``trial``'s parameters again unless it was retried ``max_retry`` times."""
        attempt = copy.deepcopy(trial)
        attempt.system_attrs = {
            k: v for k, v in trial.system_attrs.items() if k != "constraints" and not k.startswith(OWN_SYSTEM_ATTRS)
        }
        attempt.user_attrs = {}
        super().__call__(study, attempt)


@dataclass
class Storage:
    """An opened storage: the Optuna backend, and whether this process is its only worker (SQLite lock held)."""

    url: str
    backend: optuna.storages.BaseStorage
    exclusive: bool = False
    _lock: IO[bytes] | None = field(default=None, repr=False)

    def trial_id(self, study: optuna.Study, number: int) -> int:
        """Return the storage's id of trial ``number`` of ``study`` (what heartbeats and state updates address)."""
        study_id = self.backend.get_study_id_from_name(study.study_name)
        return self.backend.get_trial_id_from_study_id_trial_number(study_id, number)

    @property
    def heartbeats(self) -> bool:
        """Whether running trials send heartbeats here (RDB storages opened for a worker, SQLite excepted)."""
        return isinstance(self.backend, RDBStorage) and self.backend.get_heartbeat_interval() is not None

    def close(self) -> None:
        """Close the database connections and release the SQLite worker lock, if held.

        Closing the last connection to a SQLite file checkpoints its WAL: the file alone then holds every result.
        """
        if isinstance(self.backend, RDBStorage):
            self.backend.engine.dispose()
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def sqlite_path(url: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` URL (None for other URLs and in-memory SQLite)."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    rest = url.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def open_storage(url: str, worker: bool) -> Storage:
    """Open ``url`` for a search worker (``worker=True``: takes the SQLite lock, sends heartbeats) or a reader.

    Raises:
        UserError: the URL cannot be opened (bad scheme, no server, corrupt file, missing driver), or another
            worker already holds the SQLite file.
    """
    if "://" not in url:
        raise UserError(f"storage {url!r} is not a URL; for a SQLite file write sqlite:///{url}")
    try:
        if url.startswith(JOURNAL_PREFIX):
            path = Path(url.removeprefix(JOURNAL_PREFIX))
            if not worker and not path.is_file():
                raise UserError(f"no journal file at {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            return Storage(url, JournalStorage(JournalFileBackend(str(path))))
        db = sqlite_path(url)
        if db is not None:
            if not worker and not db.is_file():
                raise UserError(f"no database at {url}")  # opening it would create an empty one
            lock = _lock_sqlite(db) if worker else None
            try:
                if worker:
                    _use_wal(db)
                backend = RDBStorage(url, engine_kwargs=SQLITE_ENGINE)
                return Storage(url, backend, exclusive=lock is not None, _lock=lock)
            except BaseException:
                if lock is not None:
                    lock.close()
                raise
        if url.startswith("sqlite:"):
            return Storage(url, RDBStorage(url, engine_kwargs=SQLITE_ENGINE))
        if worker:
            with expected_optuna_warnings():
                backend = RDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=GRACE_PERIOD_S,
                    heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=MAX_RETRIES),
                )
        else:
            backend = RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        return Storage(url, backend)
    except UserError:
        raise
    except Exception as e:  # SQLAlchemy/Optuna raise many types for a bad URL, a corrupt file, no server, no driver
        raise UserError(f"cannot open storage {url}: {str(e).splitlines()[0]}") from e


def _lock_sqlite(db: Path) -> IO[bytes]:
    """Take the exclusive worker lock of a SQLite database; return the open lock file.

    Raises:
        UserError: another process holds it.
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    lock = (db.parent / (db.name + ".lock")).open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UserError(
            f"another nas.search is running on {db}: SQLite takes one worker at a time; for several workers use "
            "a PostgreSQL URL or journal:///FILE (README, 'Many workers')"
        ) from None
    return lock


def _use_wal(db: Path) -> None:
    """Put the SQLite file ``db`` (created if missing) in WAL journal mode, which the file keeps for every later
    connection: readers then never block the writer, nor the writer them.

    Raises:
        sqlite3.Error: the file is not a database, or stays locked beyond the busy timeout.
    """
    with contextlib.closing(sqlite3.connect(db, timeout=SQLITE_BUSY_TIMEOUT_S)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def recover_dead_trials(study: optuna.Study, storage: Storage, all_running: bool = False) -> list[int]:
    """Fail the trials of dead workers and queue each for a retry; return the failed trial numbers.

    With the SQLite lock held (or ``all_running``), every RUNNING trial is a dead worker's; with heartbeats,
    those whose heartbeat is older than the grace period. Completed trials are never touched.
    """
    if storage.exclusive or all_running:
        backend = storage.backend
        failed = []
        for t in study.get_trials(deepcopy=True, states=(TrialState.RUNNING,)):
            trial_id = storage.trial_id(study, t.number)
            try:
                backend.set_trial_user_attr(trial_id, "fail_reason", "its worker died (stale RUNNING trial)")
                backend.set_trial_state_values(trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # finished meanwhile
            # queue it again from its state before the failure, so the retry does not inherit the fail_reason
            with expected_optuna_warnings():
                RetryStaleTrial(max_retry=MAX_RETRIES)(study, t)
            failed.append(t.number)
        return failed
    if not storage.heartbeats:
        return []
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with expected_optuna_warnings():
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return sorted(before & after)


class Heartbeat:
    """Context manager sending a trial's heartbeat every HEARTBEAT_INTERVAL_S while it runs (RDB storages only).

    Optuna sends heartbeats only inside ``Study.optimize``; the search loop uses ask/tell, so it sends its own.
    """

    def __init__(self, storage: Storage, trial_id: int) -> None:
        self._backend = storage.backend if storage.heartbeats else None
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        assert self._backend is not None
        while True:
            # a transient database error must not kill the trial; the next beat retries
            if self._stop.wait(HEARTBEAT_INTERVAL_S):
                return
            with contextlib.suppress(Exception):
                self._backend.record_heartbeat(self._trial_id)

    def __enter__(self) -> Heartbeat:
        if self._backend is not None:
            # the first beat before the trial's work: a trial with no heartbeat at all would never go stale
            with contextlib.suppress(Exception):
                self._backend.record_heartbeat(self._trial_id)
            self._thread = threading.Thread(target=self._beat, name="nas-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
