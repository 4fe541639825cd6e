"""Bad input ends in one `error: ...` line, exit status 2, no traceback, and stored results untouched."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from nas import export, report, search
from nas.config import load_preset
from nas.storage import open_storage
from nas.study import open_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def stored(tmp_path: Path) -> str:
    """A SQLite storage holding study 'smoke' (one complete trial, added directly) and an empty study 'empty'."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study = open_study(load_preset("smoke"), open_storage(url, worker=True), "smoke")
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
    open_study(load_preset("smoke"), open_storage(url, worker=True), "empty")
    return url


def _fingerprint(url: str) -> list:
    return [(t.number, t.values, t.state) for t in optuna.load_study(study_name="smoke", storage=url).trials]


def _cases(tmp: Path, url: str) -> list[tuple[object, list[str], str]]:
    no_labels = tmp / "nolabels"
    (no_labels / "images" / "train").mkdir(parents=True)
    (no_labels / "images" / "val").mkdir(parents=True)
    (no_labels / "data.yaml").write_text(
        yaml.safe_dump({"path": str(no_labels), "train": "images/train", "val": "images/val", "names": ["a"]})
    )
    download = tmp / "coco8.yaml"
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
    malformed = tmp / "malformed.yaml"
    malformed.write_text("space: [yolo11_backbone\n")
    corrupt = tmp / "corrupt.db"
    corrupt.write_bytes(b"this is not a sqlite database" * 100)
    other = tmp / "other.yaml"
    other.write_text(
        yaml.safe_dump({"space": "yolov8_downsample", "synthetic": {"train_images": 32, "val_images": 16, "imgsz": 64}})
    )
    readonly = tmp / "a-file"  # a folder path through a regular file cannot be created, even by root
    readonly.write_text("")
    s = ["--storage", url]
    return [
        (search, ["--study", "smoke", "--trials", "0", *s], "--trials must be at least 1"),
        (search, ["--study", "smoke", "--trials", "-2", *s], "--trials must be at least 1"),
        (search, ["--study", "smoke", *s], "--trials is required"),
        (search, ["--study", "nope", "--trials", "1", *s], "unknown study preset 'nope'"),
        (search, ["--study", str(malformed), "--trials", "1", *s], "malformed YAML"),
        (search, ["--study", "smoke", "--trials", "1", "--bogus", *s], "unrecognized arguments: --bogus"),
        (search, ["--study", "smoke", "--trials", "1", "--data", str(tmp / "missing.yaml"), *s], "does not exist"),
        (search, ["--study", "smoke", "--trials", "1", "--data", str(no_labels / "data.yaml"), *s], "no label files"),
        (search, ["--study", "smoke", "--trials", "1", "--data", str(download), *s], "never downloads datasets"),
        (search, ["--study", "smoke", "--trials", "1", "--weights", str(tmp / "yolo11n.pt"), *s], "never downloads"),
        (search, ["--study", "smoke", "--trials", "1", "--device", "tpu", *s], "--device tpu"),
        (search, ["--study", "smoke", "--trials", "1", "--storage", f"sqlite:///{corrupt}"], "cannot open storage"),
        (
            search,
            ["--study", "smoke", "--trials", "1", "--storage", "postgresql://nobody@127.0.0.1:9/none"],
            "cannot open storage",
        ),
        (search, ["--study", str(other), "--study-name", "smoke", "--trials", "1", *s], "different space"),
        (search, ["--study", "smoke", "--json", *s], "--json is only valid with --dry-run"),
        (export, ["--study", "missing", "--out", str(tmp / "x.yaml"), *s], "no study 'missing'"),
        (export, ["--study", "empty", "--out", str(tmp / "x.yaml"), *s], "no complete, trained trial"),
        (export, ["--study", "smoke", "--trial", "42", "--out", str(tmp / "x.yaml"), *s], "no complete trial 42"),
        (export, ["--study", "smoke", *s], "--out is required"),
        (export, ["--study", "smoke", "--out", str(readonly / "sub" / "x.yaml"), *s], "cannot write"),
        (export, ["--study", "smoke", "--max-gflops", "1", "--out", str(tmp / "x.yaml"), *s], "no Pareto trial"),
        (report, ["--study", "missing", *s], "no study 'missing'"),
        (report, ["--study", "empty", *s], "no complete, trained trial"),
        (report, ["--study", "smoke", "--out", str(readonly / "rep"), *s], "cannot write the report"),
    ]


def test_bad_inputs(stored: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = _fingerprint(stored)
    cases = _cases(tmp_path, stored)
    assert len(cases) >= 20
    for module, argv, message in cases:
        assert module.main(argv) == 2, (argv, capsys.readouterr())
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert message in lines[0], (argv, lines[0])
        assert "Traceback" not in err
    assert _fingerprint(stored) == before


def test_more_bad_presets_and_spaces(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = tmp_path / "v5.yaml"
    space.write_text(
        yaml.safe_dump({"base": "yolo26n.yaml", "points": [{"layers": [22], "choices": ["C3k2_GhostV2"]}]})
    )
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00space: x")
    cases = [
        ({"space": str(space)}, "uses C3k2's attention variant (attn=True)"),
        ({"space": "yolo11_backbone", "train": {"nbs": 0}}, "train.nbs: must be at least 1"),
        ({"space": "yolo11_backbone", "synthetic": {"min_visible": 2}}, "synthetic.min_visible: is a fraction"),
        ({"space": "yolo11_backbone", "init": "warm", "warm_epochs": 0}, "warm_epochs: must be >= 1 with init: warm"),
        ({"space": "yolo11_backbone", "warm_epochs": 8}, "warm_epochs: only applies with init: warm"),
        ({"space": "yolo11_backbone", "init": "hot"}, "init: must be 'scratch' or 'warm'"),
    ]
    for preset, message in cases:
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(preset))
        assert search.main(["--study", str(path), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert search.main(["--study", str(binary), "--dry-run"]) == 2
    assert "not a UTF-8 text file" in capsys.readouterr().err
    nulls = tmp_path / "nulls.yaml"
    nulls.write_text("space: yolo11_backbone\nimgsz: null\ndata: null\n")
    assert search.main(["--study", str(nulls), "--dry-run", "--json"]) == 0  # null means the default


def test_export_does_not_create_a_database(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert export.main(["--study", "x", "--storage", url, "--list"]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


def test_resuming_on_another_device_or_weights_is_refused(tmp_path: Path) -> None:
    from nas.errors import UserError

    url = f"sqlite:///{tmp_path / 'd.db'}"
    open_study(load_preset("smoke"), open_storage(url, worker=True), "s", {"device": "AMD EPYC", "weights": None})
    with pytest.raises(UserError, match="device or initial weights"):
        open_study(
            load_preset("smoke"), open_storage(url, worker=True), "s", {"device": "NVIDIA H100", "weights": None}
        )


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
