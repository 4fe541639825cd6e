"""Searches that many tests read: run once per test session, across pytest-xdist's workers too, and copied into
each test module's own folder (so that what one module writes no other sees)."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MADE = ".made"  # written last: a folder without it is the remains of a failed search
FAILED = ".failed"  # holds a failed search's error, so that the other workers report it without searching again


def session_search(factory: pytest.TempPathFactory, name: str, argv: list[str]) -> Path:
    """Run ``nas.search`` in-process with ``argv`` plus a SQLite ``nas.db``, ``runs/`` and a cache of its own in the
    work dir ``name``, once per test session: under pytest-xdist the first worker to ask runs it while the others
    wait on a lock, then all reuse it. Return the work dir (never to be written: tests get copies).

    Raises:
        AssertionError: the search did not exit with 0, or failed in another worker.
        Exception: whatever the search raised (written down for the other workers first).
    """
    from nas.cli import search

    base = factory.getbasetemp()
    # xdist's local workers each get "popen-gwN" inside the run's fresh folder: that folder is their common one
    shared = os.environ.get("PYTEST_XDIST_WORKER") and base.name.startswith("popen-")
    root = base.parent if shared else base
    work = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (work / FAILED).is_file():
            raise AssertionError(f"the shared search {name} failed in another worker: {(work / FAILED).read_text()}")
        if not (work / MADE).is_file():
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            with pytest.MonkeyPatch.context() as env:
                env.setenv("NAS_CACHE_DIR", str(work / "cache"))
                storage = f"sqlite:///{work / 'nas.db'}"
                try:
                    status = search.main([*argv, "--storage", storage, "--run-dir", str(work / "runs")])
                except (Exception, SystemExit) as exc:  # the other workers report it, not run the search again
                    (work / FAILED).write_text(f"nas.search {' '.join(argv)} raised {exc!r}")
                    raise
            if status != 0:
                (work / FAILED).write_text(f"nas.search {' '.join(argv)} exited with {status}")
            assert status == 0, f"nas.search {' '.join(argv)} exited with {status}"
            (work / MADE).write_text("")
    return work


@contextmanager
def study_copy(made: Path, factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[str, Path]]:
    """Copy the work dir ``made`` into a fresh folder and set ``NAS_CACHE_DIR`` to a cache of its own until the
    block ends; yield (storage URL, the copy)."""
    work = factory.mktemp(name)
    # not the cache: its generated dataset's YAML names the folder it was made in; the copy makes its own on use
    shutil.copytree(made, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cache", MADE, FAILED))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NAS_CACHE_DIR", str(work / "cache"))
        yield f"sqlite:///{work / 'nas.db'}", work
