"""Bad input ends in one `error: ...` line, exit status 2, no traceback, and stored results untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from modules.ultralytics_adapter import UnsupportedUltralyticsError, check_version
from nas.cli import export, report, search
from nas.config import load_preset
from nas.study import open_storage, open_study
from nas.study.records import runtime_record

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def stored(tmp_path: Path) -> str:
    """A SQLite storage holding study 'smoke' (one complete trial, added directly) and an empty study 'empty'.

    'smoke' is opened with the runtime ``nas.search --study smoke --device cpu`` records, so a refusal to resume
    it comes from the case's own input, not from a device mismatch.
    """
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    cfg = load_preset("smoke")
    storage = open_storage(url, worker=True)
    try:
        study = open_study(cfg, storage, "smoke", runtime_record(cfg, "cpu", None))
        study.add_trial(
            optuna.trial.create_trial(
                values=[0.5, 6.5, 100.0],
                user_attrs={
                    "trained": True,
                    "feasible": True,
                    "key": "abc",
                    "summary": "stock",
                    "model_yaml": "nc: 5\n",
                    "params": 1,
                },
            )
        )
        open_study(cfg, storage, "empty")
    finally:
        storage.close()  # release the worker lock: the cases open the storage again
    return url


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """The bad files the cases refer to, by the name their argv templates use."""
    no_labels = tmp_path / "nolabels"
    (no_labels / "images" / "train").mkdir(parents=True)
    (no_labels / "images" / "val").mkdir(parents=True)
    (no_labels / "data.yaml").write_text(
        yaml.safe_dump({"path": str(no_labels), "train": "images/train", "val": "images/val", "names": ["a"]})
    )
    download = tmp_path / "coco8.yaml"
    download.write_text(
        yaml.safe_dump(
            {
                "path": "../datasets/coco8",
                "train": "images/train",
                "val": "images/val",
                "names": ["person"],
                "download": "https://example.com/coco8.zip",
            }
        )
    )
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("space: [yolo11_backbone\n")
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a sqlite database" * 100)
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump({"space": "yolov8_downsample", "synthetic": {"train_images": 32, "val_images": 16, "imgsz": 64}})
    )
    a_file = tmp_path / "a-file"  # a folder path through a regular file cannot be created, even by root
    a_file.write_text("")
    return {
        "tmp": tmp_path,
        "no_labels": no_labels / "data.yaml",
        "download": download,
        "malformed": malformed,
        "corrupt": corrupt,
        "other": other,
        "a_file": a_file,
    }


def _fingerprint(url: str) -> dict:
    """Everything stored: each study's attributes and its trials (number, state, values, params, attributes)."""
    out = {}
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        out[summary.study_name] = (
            study.user_attrs,
            [(t.number, t.state, t.values, t.params, t.user_attrs) for t in study.trials],
        )
    return out


def _one_error_line(err: str) -> str:
    """Return the only stderr line, after checking it is one ``error: `` line and there is no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


S = ("--storage", "{url}")  # the fixture's storage; a case naming its own --storage leaves this out
SMOKE = ("--study", "smoke")
OUT = ("--out", "{tmp}/x.yaml")

CASES = [
    pytest.param(search, [*SMOKE, "--trials", "0", *S], "--trials must be at least 1, got 0", id="search-trials-zero"),
    pytest.param(
        search, [*SMOKE, "--trials", "-2", *S], "--trials must be at least 1, got -2", id="search-trials-negative"
    ),
    pytest.param(search, [*SMOKE, *S], "--trials is required", id="search-trials-missing"),
    pytest.param(
        search, ["--study", "nope", "--trials", "1", *S], "unknown study preset 'nope'", id="search-preset-unknown"
    ),
    pytest.param(
        search,
        ["--study", "{malformed}", "--trials", "1", *S],
        "{malformed}: malformed YAML",
        id="search-preset-malformed",
    ),
    pytest.param(
        search, [*SMOKE, "--trials", "1", "--bogus", *S], "unrecognized arguments: --bogus", id="search-unknown-flag"
    ),
    pytest.param(
        search,
        [*SMOKE, "--trials", "1", "--data", "{tmp}/missing.yaml", *S],
        "dataset YAML {tmp}/missing.yaml does not exist",
        id="search-data-missing",
    ),
    pytest.param(
        search, [*SMOKE, "--trials", "1", "--data", "{no_labels}", *S], "no label files", id="search-data-no-labels"
    ),
    pytest.param(
        search,
        [*SMOKE, "--trials", "1", "--data", "{download}", *S],
        "never downloads datasets",
        id="search-data-would-download",
    ),
    pytest.param(
        search,
        [*SMOKE, "--trials", "1", "--weights", "{tmp}/yolo11n.pt", *S],
        "never downloads",
        id="search-weights-missing",
    ),
    pytest.param(search, [*SMOKE, "--trials", "1", "--device", "tpu", *S], "--device tpu", id="search-device-unknown"),
    pytest.param(
        search,
        [*SMOKE, "--trials", "1", "--storage", "sqlite:///{corrupt}"],
        "cannot open storage sqlite:///{corrupt}",
        id="search-storage-corrupt-sqlite",
    ),
    pytest.param(
        search,
        [*SMOKE, "--trials", "1", "--storage", "postgresql://nobody@127.0.0.1:9/none"],
        "cannot open storage postgresql://nobody@127.0.0.1:9/none",
        id="search-storage-no-server",
    ),
    pytest.param(
        search,
        [*SMOKE, "--trials", "1", "--storage", "nas.db"],
        "storage 'nas.db' is not a URL; for a SQLite file write sqlite:///nas.db",
        id="search-storage-plain-path",
    ),
    pytest.param(
        search,
        ["--study", "{other}", "--study-name", "smoke", "--trials", "1", *S],
        "study 'smoke' in {url} was created with a different space",
        id="search-study-name-of-another-space",
    ),
    pytest.param(
        search, [*SMOKE, "--json", *S], "--json is only valid with --dry-run", id="search-json-without-dry-run"
    ),
    pytest.param(
        search,
        [*SMOKE, "--study-name", "fresh", "--trials", "1", "--seed", "-1", *S],
        "--seed must be a non-negative integer, got -1",
        id="search-seed-negative",
    ),
    pytest.param(export, ["--study", "missing", *OUT, *S], "no study 'missing' in {url}", id="export-study-unknown"),
    pytest.param(
        export, ["--study", "empty", *OUT, *S], "study 'empty' has no complete, trained trial", id="export-study-empty"
    ),
    pytest.param(
        export,
        [*SMOKE, "--trial", "42", *OUT, *S],
        "study 'smoke' has no complete trial 42",
        id="export-trial-unknown",
    ),
    pytest.param(export, [*SMOKE, *S], "--out is required", id="export-out-missing"),
    pytest.param(
        export,
        [*SMOKE, "--out", "{a_file}/sub/x.yaml", *S],
        "cannot write {a_file}/sub/x.yaml",
        id="export-out-unwritable",
    ),
    pytest.param(
        export,
        [*SMOKE, "--max-gflops", "1", *OUT, *S],
        "no Pareto trial within --max-gflops 1: the front spans",
        id="export-no-pareto-trial-within-max-gflops",
    ),
    pytest.param(
        export,
        [*SMOKE, "--pick", "best", *OUT, *S],
        "argument --pick: invalid choice: 'best'",
        id="export-pick-unknown",
    ),
    pytest.param(
        export, [*SMOKE, *OUT, "--storage", "nas.db"], "write sqlite:///nas.db", id="export-storage-plain-path"
    ),
    pytest.param(report, ["--study", "missing", *S], "no study 'missing' in {url}", id="report-study-unknown"),
    pytest.param(
        report, ["--study", "empty", *S], "study 'empty' has no complete, trained trial", id="report-study-empty"
    ),
    pytest.param(
        report,
        [*SMOKE, "--out", "{a_file}/rep", *S],
        "cannot write the report to {a_file}/rep",
        id="report-out-unwritable",
    ),
    pytest.param(report, [*SMOKE, "--storage", "nas.db"], "write sqlite:///nas.db", id="report-storage-plain-path"),
]


@pytest.mark.parametrize(("cli", "argv", "message"), CASES)
def test_bad_inputs(
    cli: object,
    argv: list[str],
    message: str,
    stored: str,
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = {**inputs, "url": stored}
    argv = [arg.format(**names) for arg in argv]
    message = message.format(**names)
    cwd = tmp_path / "cwd"  # relative paths (--storage nas.db, the default run folder) land here
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = _fingerprint(stored)
    assert cli.main(argv) == 2, capsys.readouterr()
    line = _one_error_line(capsys.readouterr().err)
    assert message in line, line
    assert _fingerprint(stored) == before
    assert list(cwd.iterdir()) == []  # no database, lock or run folder created on the way to the error


BAD_SPACE = {"base": "yolo26n.yaml", "points": [{"layers": [22], "choices": ["C3k2_GhostV2"]}]}


@pytest.mark.parametrize(
    ("content", "named", "key", "message"),
    [
        pytest.param(
            {"space": "{space}"},
            "space",
            "points[L22]",
            "uses C3k2's attention variant (attn=True)",
            id="space-c3k2-attention-variant",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "train": {"nbs": 0}},
            "preset",
            "train.nbs",
            "must be at least 1, got 0",
            id="train.nbs-zero",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "train": {"lr": 0.01}},
            "preset",
            "train.lr",
            "unknown key (allowed: epochs, imgsz, batch,",
            id="train-unknown-key",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "train": {"batch": "16"}},
            "preset",
            "train.batch",
            "expected int, got '16'",
            id="train.batch-a-string",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "synthetic": {"min_visible": 2}},
            "preset",
            "synthetic.min_visible",
            "must be at most 1, got 2",
            id="synthetic.min_visible-above-1",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "constraints": {"max_gflops": -1}},
            "preset",
            "constraints.max_gflops",
            "must be greater than 0, got -1",
            id="constraints.max_gflops-negative",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "latency": [1]},
            "preset",
            "latency",
            "must be a mapping (keys: runs, warmup, threads, half, backend, max_spread)",
            id="latency-not-a-mapping",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "init": "warm", "warm_epochs": 0},
            "preset",
            "warm_epochs",
            "must be at least 1, got 0",
            id="warm_epochs-zero",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "warm_epochs": 8},
            "preset",
            "warm_epochs",
            "only applies with init: warm",
            id="warm_epochs-without-init-warm",
        ),
        pytest.param(
            {"space": "yolo11_backbone", "init": "hot"},
            "preset",
            "init",
            "must be one of scratch, warm, supernet, got 'hot'",
            id="init-unknown",
        ),
        pytest.param({"space": 3}, "preset", "space", "expected str, got 3", id="space-not-a-string"),
        pytest.param(b"- a\n", "preset", "", "a preset must be a mapping", id="preset-a-list"),
        pytest.param(b"\xff\xfe\x00space: x", "preset", "", "not a UTF-8 text file", id="preset-not-utf8"),
    ],
)
def test_bad_presets_and_spaces(
    content: dict | bytes, named: str, key: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    files = {"space": tmp_path / "v5.yaml", "preset": tmp_path / "p.yaml"}
    files["space"].write_text(yaml.safe_dump(BAD_SPACE))
    if isinstance(content, bytes):
        files["preset"].write_bytes(content)
    else:
        files["preset"].write_text(
            yaml.safe_dump({k: v.format(**files) if isinstance(v, str) else v for k, v in content.items()})
        )
    assert search.main(["--study", str(files["preset"]), "--dry-run"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    prefix = f"error: {files[named]}: {key}: " if key else f"error: {files[named]}: "  # names the file and the key
    assert line.startswith(prefix) and message in line, line


def test_null_preset_values_mean_the_default(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = tmp_path / "small.yaml"  # one point, two choices: the dry run is quick
    space.write_text(
        yaml.safe_dump(
            {"base": "yolo11n.yaml", "points": [{"name": "b", "layers": [8], "choices": ["C3k2", "C3k2_GhostV2"]}]}
        )
    )
    nulls = tmp_path / "nulls.yaml"
    nulls.write_text(f"space: {space}\nimgsz: null\ndata: null\ntrain: null\n")
    assert search.main(["--study", str(nulls), "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["imgsz"] == 640 and d["dataset"].startswith("synthetic") and d["space_size"] == 2


def test_export_does_not_create_a_database(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert export.main(["--study", "x", "--storage", url, "--list"]) == 2
    assert "no database at" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "typo.db").exists()


def test_resuming_on_another_device_or_weights_is_refused(tmp_path: Path) -> None:
    from nas.errors import UserError

    url = f"sqlite:///{tmp_path / 'd.db'}"
    storage = open_storage(url, worker=True)
    try:
        open_study(load_preset("smoke"), storage, "s", {"device": "AMD EPYC", "weights": None})
        with pytest.raises(UserError, match="device or initial weights"):
            open_study(load_preset("smoke"), storage, "s", {"device": "NVIDIA H100", "weights": None})
    finally:
        storage.close()


def test_local_dataset_relative_root_is_resolved_for_ultralytics(
    tmp_path: Path, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nas.data.datasets import local_dataset

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    d = yaml.safe_load(tiny_dataset.read_text())
    yaml_dir = tiny_dataset.parent.parent
    rel = tiny_dataset.parent.name  # path relative to the YAML's own folder, which Ultralytics would not try
    user_yaml = yaml_dir / "user.yaml"
    user_yaml.write_text(yaml.safe_dump({**d, "path": rel}))
    ds = local_dataset(user_yaml)
    used = yaml.safe_load(ds.data_yaml().read_text())
    assert Path(used["path"]).is_absolute() and Path(used["path"]) == tiny_dataset.parent.resolve()
    assert ds.nc == 5


# Run a CLI the way ``python -m`` does, with importlib.metadata reporting another Ultralytics version (or none).
FAKE_VERSION = """
import importlib.metadata as m, runpy, sys
real, fake = m.version, {version!r}
def version(name):
    if name != "ultralytics":
        return real(name)
    if fake is None:
        raise m.PackageNotFoundError(name)
    return fake
m.version = version
sys.argv = [{module!r}]
runpy.run_module({module!r}, run_name="__main__")
"""


@pytest.mark.parametrize(
    ("module", "version", "message"),
    [
        pytest.param("nas.search", "8.5.1", "error: Ultralytics 8.5.1 is installed, but", id="search-8.5.1"),
        pytest.param("nas.export", "8.4.189", "error: Ultralytics 8.4.189 is installed, but", id="export-8.4.189"),
        pytest.param("nas.report", None, "error: Ultralytics is not installed; pip install", id="report-not-installed"),
    ],
)
def test_untested_ultralytics_stops_a_cli_with_one_line(module: str, version: str | None, message: str) -> None:
    code = FAKE_VERSION.format(module=module, version=version)
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message), done.stderr
    assert "ultralytics>=8.4.190,<8.5" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("version", ["8.4.189", "8.5.0", "8.5.1", "9.0.0", "8.3.250", "7.4.190"])
def test_check_version_refuses_outside_the_tested_range(version: str) -> None:
    with pytest.raises(UnsupportedUltralyticsError, match=rf"^Ultralytics {version} is installed, but") as e:
        check_version(version)
    assert e.value.name == "ultralytics" and "\n" not in str(e.value)  # nas/__init__ prints it as one line


@pytest.mark.parametrize("version", ["8.4.190", "8.4.191", "8.4.999", "8.4.190+cpu"])
def test_check_version_accepts_the_tested_range(version: str) -> None:
    assert check_version(version) == version
