"""Local servers the tests start: a free loopback port, and optuna-dashboard on a storage."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DASHBOARD_STARTS = 3  # a port found free can be taken before the server binds it (another xdist worker)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now (something may take it before it is used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 10.0) -> object:
    """Return the JSON answer of a GET request.

    Raises:
        OSError: no answer (urllib.error.URLError, HTTPError and timeouts are OSErrors).
    """
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def _answers(proc: subprocess.Popen, base: str) -> bool:
    """Return whether the server at ``base`` answers ``/api/studies`` within 40 s; False at once if ``proc`` exits
    (its port was taken, for one)."""
    for _ in range(200):
        try:
            get_json(f"{base}/api/studies", timeout=2)
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.2)
    raise AssertionError(f"optuna-dashboard did not answer at {base} within 40 s")


def _stop(proc: subprocess.Popen) -> None:
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
        AssertionError: it exited every time, or did not answer within 40 s.
    """
    exe = Path(sys.executable).with_name("optuna-dashboard")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "optuna_dashboard"]
    cmd.append(storage)
    if artifact_dir is not None:
        cmd += ["--artifact-dir", str(artifact_dir)]
    codes = []
    for _ in range(DASHBOARD_STARTS):
        port = free_port()
        with (log or Path("/dev/null")).open("ab") as out:
            proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=out)
        try:
            if _answers(proc, f"http://127.0.0.1:{port}"):
                yield f"http://127.0.0.1:{port}"
                return
            codes.append(proc.returncode)
        finally:
            _stop(proc)
    raise AssertionError(f"optuna-dashboard exited {len(codes)} times before answering: {codes} (log: {log})")
