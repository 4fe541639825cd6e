"""Local servers the tests start: a free loopback port, and optuna-dashboard on a storage."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DASHBOARD_STARTS = 3  # a port found free can be taken before the server binds it (another xdist worker)
ANSWER_S = 40  # how long a started dashboard has to answer


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now (something may take it before it is used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 10.0) -> Any:
    """Return the JSON answer of a GET request.

    Raises:
        OSError: no answer (urllib.error.URLError, HTTPError and timeouts are OSErrors).
        http.client.HTTPException: a broken HTTP answer.
        ValueError: an answer that is not JSON.
    """
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def _answers(proc: subprocess.Popen, base: str, log: Path | None) -> bool:
    """Return whether the server ``proc`` answers ``/api/studies`` at ``base`` within ``ANSWER_S``; False as soon as
    it has exited (its port was taken, for one), even if something else answers there.

    Raises:
        AssertionError: it runs but gave no answer in time.
    """
    deadline = time.monotonic() + ANSWER_S
    while time.monotonic() < deadline:
        try:
            get_json(f"{base}/api/studies", timeout=2)
            return proc.poll() is None
        except (OSError, http.client.HTTPException, ValueError):
            if proc.poll() is not None:
                return False
            time.sleep(0.2)
    raise AssertionError(f"optuna-dashboard did not answer at {base} within {ANSWER_S} s{_tail(log)}")


def _tail(log: Path | None) -> str:
    """Return the last lines of ``log`` to append to an error message ('' without a log)."""
    return f"; its log ends:\n{log.read_text(errors='replace')[-2000:]}" if log and log.is_file() else ""


def _stop(proc: subprocess.Popen) -> None:
    """Stop ``proc``: terminate, then kill if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def dashboard(storage: str, artifact_dir: Path | None = None, log: Path | None = None) -> Iterator[str]:
    """Serve optuna-dashboard on ``storage`` at 127.0.0.1 until the block ends; yield its base URL once it answers
    ``/api/studies``. A server that exits before answering is started again on another free port, up to
    ``DASHBOARD_STARTS`` times; its output goes to ``log`` (appended) or nowhere.

    Raises:
        AssertionError: it exited every time, or did not answer within ``ANSWER_S``.
    """
    exe = Path(sys.executable).with_name("optuna-dashboard")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "optuna_dashboard"]
    cmd.append(storage)
    if artifact_dir is not None:
        cmd += ["--artifact-dir", str(artifact_dir)]
    codes: list[int | None] = []
    for _ in range(DASHBOARD_STARTS):
        port = free_port()
        with (log or Path(os.devnull)).open("ab") as out:
            proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=out)
        try:
            if _answers(proc, f"http://127.0.0.1:{port}", log):
                yield f"http://127.0.0.1:{port}"
                return
            codes.append(proc.returncode)
        finally:
            _stop(proc)
    raise AssertionError(f"optuna-dashboard exited {len(codes)} times before answering, with {codes}{_tail(log)}")
