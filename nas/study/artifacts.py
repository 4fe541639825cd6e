"""Optuna artifacts for optuna-dashboard: each trial's model YAML and the study's HTML report as downloadable files.

The database stays the source of truth (export reads the YAML from the trial's records); the artifact is the
dashboard's copy, stored with Optuna's public ``optuna.artifacts`` API in a ``FileSystemArtifactStore``:

- ``sqlite:///DIR/NAME.db`` and ``journal:///DIR/NAME.log``: the folder ``DIR/NAME_artifacts`` beside the file
  (the default ``sqlite:///nas_studies.db`` gives ``./nas_studies_artifacts``);
- the environment variable ``NAS_ARTIFACT_DIR``, when set, overrides both, and is the only way to store artifacts
  of a server storage (PostgreSQL, MySQL): its workers may run on several hosts, so the folder must be one that all
  of them and the dashboard see; without it, such a study has no artifacts (export and report need none).

Start the dashboard on the same folder: ``optuna-dashboard sqlite:///nas_studies.db --artifact-dir
nas_studies_artifacts``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.storages import BaseStorage

from ..errors import UserError
from .storage import JOURNAL_PREFIX, sqlite_path

ENV_VAR = "NAS_ARTIFACT_DIR"
REPORT_NAME = "report.html"
REPORT_DIGEST_ATTR = "nas:report_sha256"  # study system attribute: the last report uploaded


def artifact_dir(url: str) -> Path | None:
    """Return the artifact folder of storage ``url`` (see the module docstring); None where there is none (in-memory
    SQLite, a server storage without ``NAS_ARTIFACT_DIR``)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url.removeprefix(JOURNAL_PREFIX))
        return path.with_name(path.stem + "_artifacts")
    db = sqlite_path(url)
    if db is not None:
        return db.with_name(db.stem + "_artifacts")
    return None


def open_store(url: str) -> FileSystemArtifactStore | None:
    """Return the artifact store of storage ``url``, creating its folder; None where there is none.

    Raises:
        UserError: the folder cannot be created.
    """
    folder = artifact_dir(url)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the artifact folder {folder}: {e.strerror or e} (set {ENV_VAR})") from e
    return FileSystemArtifactStore(folder)


def upload_text(
    store: FileSystemArtifactStore,
    target: optuna.Trial | optuna.Study,
    filename: str,
    text: str,
    mimetype: str,
) -> str:
    """Store ``text`` as the artifact ``filename`` of a running trial or a study; return the artifact id.

    Raises:
        OSError: the store's folder cannot be written.
        optuna.exceptions.UpdateFinishedTrialError: ``target`` is a finished trial.
    """
    with tempfile.TemporaryDirectory(prefix="nas-artifact-") as tmp:
        path = Path(tmp) / filename  # upload_artifact names the artifact after the file
        path.write_text(text, encoding="utf-8")
        return upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=target, mimetype=mimetype, encoding="utf-8"
        )


def upload_model_yaml(store: FileSystemArtifactStore, trial: optuna.Trial, text: str) -> str:
    """Store a running trial's model YAML as its artifact ``trial_<number>.yaml``; return the artifact id.

    Raises:
        OSError: the store's folder cannot be written.
    """
    return upload_text(store, trial, f"trial_{trial.number}.yaml", text, "text/yaml")


def upload_report(store: FileSystemArtifactStore, study: optuna.Study, storage: BaseStorage, html: str) -> bool:
    """Store the report's HTML as the artifact ``report.html`` of ``study`` (kept in ``storage``) unless the last
    one uploaded is the same; return whether it was uploaded.

    Raises:
        OSError: the store's folder cannot be written.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    digest = hashlib.sha256(html.encode()).hexdigest()
    if storage.get_study_system_attrs(study_id).get(REPORT_DIGEST_ATTR) == digest:
        return False
    upload_text(store, study, REPORT_NAME, html, "text/html")
    storage.set_study_system_attr(study_id, REPORT_DIGEST_ATTR, digest)
    return True
