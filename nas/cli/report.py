"""``python -m nas.report``: a self-contained HTML report of a study, and the same figures for optuna-dashboard; the
report itself is stored as the study's artifact ``report.html`` in the storage's artifact folder
(``nas.study.artifacts``), which the dashboard offers when started with ``--artifact-dir``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError
from ..reporting import figures, save_to_dashboard, trained, write_html
from ..study import DEFAULT_STORAGE, load_study, open_storage
from ..study.artifacts import artifact_dir, open_store, upload_report
from . import ArgumentParser, cli, log


@cli
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nas.report``; return the exit status (0 ok, 2 bad input)."""
    p = ArgumentParser(prog="python -m nas.report", description=__doc__)
    p.add_argument("--study", required=True, help="study name in the storage")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--out", default="report", help="output folder for index.html (default: report/)")
    args = p.parse_args(argv)
    study = load_study(args.storage, args.study)
    if not trained(study):
        raise UserError(f"study {args.study!r} has no complete, trained trial yet")
    figs = figures(study)
    try:
        path = write_html(study, figs, Path(args.out), storage=args.storage)
    except OSError as e:
        raise UserError(f"cannot write the report to {args.out}: {e.strerror or e}") from e
    try:
        save_to_dashboard(study, figs)
    except Exception as e:  # the HTML is written; a storage that refuses the figures must not look like a crash
        raise UserError(f"wrote {path}, but could not save the figures into the study: {e}") from e
    store = open_store(args.storage)
    if store is not None:
        storage = open_storage(args.storage, worker=False)
        try:
            upload_report(store, study, storage.backend, path.read_text())
        except Exception as e:  # a folder or a storage that refuses it: the HTML and figures are saved already
            raise UserError(f"wrote {path}, but could not store it as the study's artifact: {e}") from e
        finally:
            storage.close()
    log(f"wrote {path}; figures saved to the study for optuna-dashboard")
    if store is not None:
        folder = artifact_dir(args.storage)
        log(f"artifacts (report, model YAMLs) in {folder}: optuna-dashboard {args.storage} --artifact-dir {folder}")
    return 0
