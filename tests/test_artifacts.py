"""Trial records and artifacts: long records out of the user attributes, each trial's model YAML (and the report) as
Optuna artifacts in the folder beside the database, reused twins included, earlier studies still readable."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import download_artifact, get_all_artifact_meta
from optuna.trial import TrialState

from nas.cli import report
from nas.study import loop as loop_module
from nas.study import open_storage
from nas.study.artifacts import ENV_VAR, artifact_dir, open_store
from nas.study.records import LONG_RECORDS, SYSTEM_PREFIX, record, records
from nas.study.storage import RetryStaleTrial, expected_optuna_warnings
from tests.test_study_loop import FakeEvaluate, new_study, runner, write_preset

SHORT_ATTR_CHARS = 250  # the longest user attribute kept: the architecture by insertion point (~200 characters)


def artifact_text(store_dir: Path, meta: optuna.artifacts.ArtifactMeta, tmp_path: Path) -> str:
    """Return the text of one artifact of the file store in ``store_dir``."""
    out = tmp_path / f"{meta.artifact_id}.download"
    store = optuna.artifacts.FileSystemArtifactStore(store_dir)
    download_artifact(artifact_store=store, file_path=str(out), artifact_id=meta.artifact_id)
    return out.read_text()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////data/x/nas.db", Path("/data/x/nas_artifacts")),
        ("sqlite:///nas_studies.db", Path("nas_studies_artifacts")),
        ("journal:////data/j.log", Path("/data/j_artifacts")),
        ("sqlite:///:memory:", None),
        ("postgresql://u@localhost/db", None),
    ],
)
def test_the_artifact_folder_sits_beside_the_database(
    url: str, expected: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert artifact_dir(url) == expected


def test_the_environment_names_the_artifact_folder_for_any_storage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "shared"))
    assert artifact_dir("postgresql://u@localhost/db") == tmp_path / "shared"
    assert artifact_dir("sqlite:////data/nas.db") == tmp_path / "shared"
    assert open_store("postgresql://u@localhost/db") is not None and (tmp_path / "shared").is_dir()


def test_record_reads_the_system_attribute_and_falls_back_to_earlier_user_attributes() -> None:
    dist = {"x": optuna.distributions.CategoricalDistribution(["a"])}
    old = optuna.trial.create_trial(params={"x": "a"}, distributions=dist, values=[0.0, 1.0, 2.0],
                                    user_attrs={"model_yaml": "# old", "key": "k"})  # fmt: skip
    new = optuna.trial.create_trial(params={"x": "a"}, distributions=dist, values=[0.0, 1.0, 2.0],
                                    user_attrs={"key": "k"}, system_attrs={"nas:model_yaml": "# new"})  # fmt: skip
    assert record(old, "model_yaml") == "# old" and record(new, "model_yaml") == "# new"
    assert record(new, "latency", {}) == {} and records(new) == {"key": "k", "model_yaml": "# new"}


def test_a_smoke_trial_keeps_short_user_attributes_and_offers_its_yaml(
    smoke_study: tuple[str, Path], tmp_path: Path
) -> None:
    url, work = smoke_study
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials(states=(TrialState.COMPLETE,))
    folder = work / "nas_artifacts"
    assert folder.is_dir()
    for t in trials:
        assert not LONG_RECORDS & set(t.user_attrs), t.number
        assert {SYSTEM_PREFIX + name for name in LONG_RECORDS} <= set(t.system_attrs), t.number
        too_long = {k: len(json.dumps(v)) for k, v in t.user_attrs.items() if len(json.dumps(v)) > SHORT_ATTR_CHARS}
        assert too_long == {}, t.number
        assert record(t, "model_yaml").startswith("# architecture") and record(t, "latency")["runs"] >= 1
        (meta,) = get_all_artifact_meta(t, storage=optuna.storages.RDBStorage(url))
        assert meta.filename == f"trial_{t.number}.yaml"
        assert artifact_text(folder, meta, tmp_path) == record(t, "model_yaml")  # the database's YAML, unchanged


def test_the_report_is_stored_once_as_the_study_artifact(smoke_study: tuple[str, Path], tmp_path: Path) -> None:
    url, work = smoke_study
    out = tmp_path / "rep"
    for _ in range(2):  # the same report twice: one artifact
        assert report.main(["--study", "smoke", "--storage", url, "--out", str(out)]) == 0
    study = optuna.load_study(study_name="smoke", storage=url)
    metas = [m for m in get_all_artifact_meta(study) if m.filename == "report.html"]
    assert len(metas) == 1
    assert artifact_text(work / "nas_artifacts", metas[0], tmp_path) == (out / "index.html").read_text()


def test_a_reused_twin_copies_records_and_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_module, "evaluate", FakeEvaluate())
    cfg = write_preset(tmp_path)
    storage = open_storage(f"sqlite:///{tmp_path / 'a.db'}", worker=True)
    try:
        study = new_study(cfg, storage)
        for _ in range(2):
            study.enqueue_trial({"down_p2": "GhostV2"})
        assert runner(study, cfg, storage, 2, tmp_path).run() == 2
        first, twin = study.get_trials()
        assert twin.user_attrs["dedup_of"] == 0 and record(twin, "phases") == {}
        for name in ("model_yaml", "latency", "versions"):
            assert record(twin, name) == record(first, name), name
        metas = get_all_artifact_meta(twin, storage=storage.backend)
        assert [m.filename for m in metas] == ["trial_1.yaml"]
        assert artifact_text(tmp_path / "a_artifacts", metas[0], tmp_path) == record(first, "model_yaml")
    finally:
        storage.close()


def test_a_retry_of_a_dead_attempt_inherits_no_records_or_artifacts(tmp_path: Path) -> None:
    cfg = write_preset(tmp_path)
    storage = open_storage(f"sqlite:///{tmp_path / 'r.db'}", worker=True)
    try:
        study = new_study(cfg, storage)
        dead = study.ask()
        dead.suggest_categorical("down_p2", ["Conv", "GhostV2"])
        storage.backend.set_trial_system_attr(storage.trial_id(study, 0), "nas:model_yaml", "# dead")
        storage.backend.set_trial_system_attr(storage.trial_id(study, 0), "artifacts:x", {"artifact_id": "x"})
        with expected_optuna_warnings():
            RetryStaleTrial(max_retry=2)(study, study.get_trials()[0])
        retry = study.get_trials()[1]
        assert retry.state == TrialState.WAITING and not any(k.startswith(("nas:", "artifacts:")) for k in
                                                             retry.system_attrs)  # fmt: skip
    finally:
        storage.close()


def test_a_worker_puts_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    import sqlite3

    storage = open_storage(f"sqlite:///{tmp_path / 'w.db'}", worker=True)
    try:
        with storage.backend.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 60_000
    finally:
        storage.close()
    with sqlite3.connect(tmp_path / "w.db") as c:  # kept by the file for every later reader (the dashboard)
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
