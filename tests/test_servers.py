"""The tests' dashboard server: started again on another port when the one it was given is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import optuna
import pytest

from tests import servers


def test_a_dashboard_whose_port_was_taken_meanwhile_starts_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"sqlite:///{tmp_path / 'one.db'}"
    optuna.create_study(storage=storage, study_name="one")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: the server cannot bind it, and nothing answers there
        free = servers.free_port()
        ports = iter([taken.getsockname()[1], free])
        monkeypatch.setattr(servers, "free_port", lambda: next(ports))
        with servers.dashboard(storage, log=tmp_path / "dashboard.log") as base:
            assert base == f"http://127.0.0.1:{free}"
            names = [s["study_name"] for s in servers.get_json(f"{base}/api/studies")["study_summaries"]]
    assert names == ["one"]
