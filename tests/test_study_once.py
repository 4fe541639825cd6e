"""A search shared by the test session's workers: a failed one is written down once and reported, not rerun."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from nas.cli import search
from tests.study_once import FAILED, MADE, session_search


def test_a_search_that_raises_is_written_down_and_the_next_caller_reports_it_without_searching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def broken(argv: list[str]) -> int:
        calls.append(argv)
        raise RuntimeError("the dataset vanished")

    monkeypatch.setattr(search, "main", broken)
    factory = SimpleNamespace(getbasetemp=lambda: tmp_path)
    with pytest.raises(RuntimeError, match="vanished"):
        session_search(factory, "shared", ["--study", "smoke"])
    assert "the dataset vanished" in (tmp_path / "shared" / FAILED).read_text()
    with pytest.raises(AssertionError, match=r"failed in another worker.*the dataset vanished"):
        session_search(factory, "shared", ["--study", "smoke"])
    assert len(calls) == 1 and not (tmp_path / "shared" / MADE).exists()


def test_a_search_that_exits_non_zero_is_written_down_and_one_that_succeeds_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses = iter([2, 0])
    monkeypatch.setattr(search, "main", lambda argv: next(statuses))
    factory = SimpleNamespace(getbasetemp=lambda: tmp_path)
    with pytest.raises(AssertionError, match="exited with 2"):
        session_search(factory, "bad", ["--study", "smoke"])
    with pytest.raises(AssertionError, match="failed in another worker"):
        session_search(factory, "bad", ["--study", "smoke"])
    work = session_search(factory, "good", ["--study", "smoke"])
    assert (work / MADE).is_file()
    assert session_search(factory, "good", ["--study", "smoke"]) == work  # made once: the iterator is not asked again
