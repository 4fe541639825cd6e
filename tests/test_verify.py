"""``python -m nas.verify``: the best Pareto trials and the stock reference trained again from scratch, stored beside
the proxy values, resumed after an interruption, kept apart per dataset and schedule, and read by export and report."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml

import nas.study.verify as verify_lib
from nas.cli import export
from nas.cli import verify as verify_cli
from nas.config import load_preset
from nas.errors import ConfigError, UserError
from nas.measure import ProxyResult
from nas.objectives import MAP, pareto_front, reference_trial, value
from nas.reporting.figures import figures
from nas.study import load_study, open_storage, open_study
from nas.study.verify import (
    Plan,
    adapt_nc,
    covering,
    kendall,
    make_plan,
    results,
    select,
    spearman,
    study_preset,
    verifications,
    verified,
    verify_front,
)

ROOT = Path(__file__).resolve().parents[1]
OLD_STUDY = ROOT / "tests" / "data" / "main_smoke_study.db"  # written before verification existed, no reference
BASE = ["--study", "smoke", "--top", "2", "--epochs", "1"]


# (mAP50-95, GFLOPs, latency) of three architectures that are all on the front, whatever latency noise a real
# smoke search would add: the best two by mAP are trial 2 and the stock reference, trial 0
FRONT = {"stock": (0.10, 6.5, 60.0), "ghost": (0.08, 6.4, 70.0), "convnext": (0.12, 6.9, 80.0)}


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A smoke study (preset, dataset, space as nas.search makes them) holding three complete trials with a known
    Pareto front; yields (storage URL, work dir)."""
    from nas.study.records import runtime_record

    work = tmp_path_factory.mktemp("verify")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NAS_CACHE_DIR", str(work / "cache"))
        url = f"sqlite:///{work / 'nas.db'}"
        cfg = load_preset("smoke")
        storage = open_storage(url, worker=True)
        study = open_study(cfg, storage, "smoke", runtime_record(cfg, "cpu", None))
        archs = {
            "stock": cfg.space.stock(),
            "ghost": cfg.space.architecture({"down_p2": "GhostV2"}),
            "convnext": cfg.space.architecture({"c3k2_p2": "C3k2_ConvNeXt"}),
        }
        for name, arch in archs.items():
            attrs = {
                "key": arch.key,
                "summary": arch.summary(),
                "architecture": arch.as_dict(),
                "model_yaml": arch.to_yaml(cfg.dataset.nc),
                "trained": True,
                "feasible": True,
                "params": 1,
                "imgsz": cfg.imgsz,
                "train_imgsz": cfg.schedule["imgsz"],
                **({"reference": True} if name == "stock" else {}),
            }
            study.add_trial(optuna.trial.create_trial(values=list(FRONT[name]), user_attrs=attrs))
        storage.close()
        yield url, work


def _verify(storage: str, work: Path, *extra: str) -> int:
    return verify_cli.main([*BASE, "--storage", storage, "--run-dir", str(work / "runs"), *extra])


def _default_plan(study: optuna.Study) -> Plan:
    return make_plan(study, study_preset(study), epochs=1)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_verify_stores_each_trial_and_the_agreement(smoke_study: tuple[str, Path], capsys: pytest.CaptureFixture):
    storage, work = smoke_study
    assert _verify(storage, work) == 0
    out = capsys.readouterr().out
    assert "proxy mAP50-95" in out and "verified" in out and "rank agreement of proxy and verified" in out
    study = load_study(storage, "smoke")
    chosen = select(study, 2)
    assert sorted(t.number for t in chosen) == [0, 2]  # the two best by mAP on the front (the stock one among them)
    reference = reference_trial(study)
    assert reference is not None and reference.number in {t.number for t in chosen}  # the stock model always
    plan = _default_plan(study)
    entry = verifications(study)[plan.id]
    assert (
        entry["study_dataset"]
        and entry["schedule"]["epochs"] == 1
        and entry["trials"] == sorted(t.number for t in chosen)
    )
    assert entry["agreement"]["n"] == len(chosen) and entry["agreement"]["trials"] == sorted(t.number for t in chosen)
    for t in chosen:
        record = results(study, t.number)[plan.id]
        assert 0.0 <= record[MAP] <= record["mAP50"] <= 1.0
        assert record["epochs"] == 1 and record["schedule"]["epochs"] == 1 and record["device"] == "cpu"
        assert record["dataset"] == study.user_attrs["dataset"] and record["seconds"] > 0
        assert verified(study, t.number) == {**record, "verification": plan.id}
        assert f"{t.number:>5}  {value(t, MAP):>14.4f}  {record[MAP]:>8.4f}" in out
    assert covering(study, [t.number for t in chosen]) == plan.id
    assert not list((work / "runs" / "smoke").glob("verify_*"))  # run folders and YAMLs removed


def test_a_second_run_skips_every_verified_trial(smoke_study: tuple[str, Path], capsys: pytest.CaptureFixture):
    storage, work = smoke_study
    assert _verify(storage, work) == 0
    before = load_study(storage, "smoke").user_attrs
    capsys.readouterr()
    assert _verify(storage, work) == 0
    err = capsys.readouterr().err
    assert err.count(": already verified (") == 2 and "done: 0 trained, 2 already verified" in err
    assert load_study(storage, "smoke").user_attrs == before


def test_another_dataset_is_stored_apart_and_adapts_nc(
    smoke_study: tuple[str, Path], tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    storage, work = smoke_study
    assert _verify(storage, work) == 0
    study = load_study(storage, "smoke")
    default = _default_plan(study).id
    first = {t.number: verified(study, t.number) for t in select(study, 2)}
    six = tmp_path / "six.yaml"  # the tiny dataset with a sixth (unused) class: nc differs from the stored YAMLs
    d = yaml.safe_load(tiny_dataset.read_text())
    six.write_text(yaml.safe_dump({**d, "names": [*d["names"].values(), "extra"]}))
    assert _verify(storage, work, "--data", str(six)) == 0
    assert "another dataset than the search's" in capsys.readouterr().out
    study = load_study(storage, "smoke")
    other = next(vid for vid, v in verifications(study).items() if not v["study_dataset"])
    assert other != default and verifications(study)[other]["nc"] == 6
    for number, record in first.items():
        assert verified(study, number) == record  # the study's own verification still stands for the trial
        assert (
            results(study, number)[other]["nc"] == 6 and str(six.resolve()) in results(study, number)[other]["dataset"]
        )
    assert covering(study, list(first)) == default


def test_an_interrupted_run_resumes_with_the_rest(
    smoke_study: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    storage, work = smoke_study
    calls = []
    train = verify_lib.train_proxy

    def second_is_interrupted(*args: object, **kwargs: object) -> ProxyResult:
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(verify_lib, "train_proxy", second_is_interrupted)
    argv = [*BASE[:4], "--epochs", "2", "--storage", storage, "--run-dir", str(work / "runs")]
    assert verify_cli.main(argv) == 130
    assert "run again to verify the rest" in capsys.readouterr().err
    study = load_study(storage, "smoke")
    plan = make_plan(study, study_preset(study), epochs=2)
    done = [t.number for t in select(study, 2) if plan.id in results(study, t.number)]
    assert len(done) == 1 and not list((work / "runs" / "smoke").glob("verify_*"))
    monkeypatch.setattr(verify_lib, "train_proxy", train)
    assert verify_cli.main(argv) == 0
    err = capsys.readouterr().err
    assert f"trial {done[0]}: already verified" in err and "done: 1 trained, 1 already verified" in err
    study = load_study(storage, "smoke")
    assert all(plan.id in results(study, t.number) for t in select(study, 2))


def test_export_header_and_report_table_show_the_verified_value(smoke_study: tuple[str, Path]) -> None:
    storage, work = smoke_study
    assert _verify(storage, work) == 0
    study = load_study(storage, "smoke")
    out = work / "verified.yaml"
    for t in study.trials:
        assert export.main(["--study", "smoke", "--storage", storage, "--trial", str(t.number), "--out", str(out)]) == 0
        record = verified(study, t.number)
        line = out.read_text().splitlines()[1]
        assert line.startswith(f"# mAP50-95 {value(t, MAP):.4f} (proxy, train imgsz 64) | ")
        if record:
            checked = f"verified mAP50-95 {record[MAP]:.4f} (from scratch, {record['epochs']} epochs)"
            assert f"(proxy, train imgsz 64) | {checked} |" in line
        else:
            assert "verified" not in line
    assert export.main(["--study", "smoke", "--storage", storage, "--out", str(out)]) == 0
    vid = covering(study, [t.number for t in pareto_front(study)])
    assert ("ranked by the verified values" in out.read_text()) == (vid is not None)
    table = figures(study)["nas-pareto-table"].data[0]
    assert "verified mAP50-95" in table.header.values
    column = list(table.cells.values[table.header.values.index("verified mAP50-95")])
    rows = list(table.cells.values[0])
    for n, cell in zip(rows, column, strict=True):
        record = verified(study, n)
        assert cell == (f"{record[MAP]:.4f} ({record['epochs']} ep)" if record else "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--study", "missing"], "no study 'missing' in", id="study-unknown"),
        pytest.param(["--study", "smoke", "--top", "0"], "--top must be at least 1, got 0", id="top-zero"),
        pytest.param(["--study", "smoke", "--epochs", "0"], "--epochs must be at least 1, got 0", id="epochs-zero"),
        pytest.param(
            ["--study", "smoke", "--data", "{tmp}/missing.yaml"],
            "dataset YAML {tmp}/missing.yaml does not exist",
            id="data-missing",
        ),
        pytest.param(["--study", "smoke", "--device", "tpu"], "--device tpu", id="device-unknown"),
    ],
)
def test_bad_inputs_give_one_error_line(
    smoke_study: tuple[str, Path], argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    storage, _ = smoke_study
    before = load_study(storage, "smoke").user_attrs
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert verify_cli.main([*argv, "--storage", storage, "--run-dir", str(tmp_path / "runs")]) == 2
    assert message.format(tmp=tmp_path) in _one_error_line(capsys.readouterr().err)
    assert load_study(storage, "smoke").user_attrs == before
    assert not (tmp_path / "runs").exists()


def test_a_study_made_before_verification_verifies_from_its_stored_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    db = tmp_path / "old.db"
    shutil.copy(OLD_STUDY, db)
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{db}"
    study = load_study(url, "smoke")
    assert reference_trial(study) is None and not Path(study.user_attrs["preset_path"]).exists()
    argv = ["--study", "smoke", "--storage", url, "--top", "1", "--epochs", "1", "--run-dir", str(tmp_path / "r")]
    assert verify_cli.main(argv) == 0
    assert "needs at least two verified trials" in capsys.readouterr().out
    (trial,) = select(study, 1)
    assert verified(study, trial.number)["epochs"] == 1


def _fake_train(maps: dict[str, float]):  # model YAML name -> mAP50-95
    def train(model_yaml: Path, *args: object, **kwargs: object) -> ProxyResult:
        number = model_yaml.stem.rsplit("_", 1)[1]
        return ProxyResult(maps[number], maps[number] + 0.1, 1.0, 0.1, 3)

    return train


def test_results_are_stored_on_journal_storage_and_the_agreement_is_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"journal:///{tmp_path / 'j.journal'}"
    cfg = load_preset("smoke")
    study = _four_trials(url, "j")
    storage = open_storage(url, worker=False)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # why the results are study attributes
        storage.backend.set_trial_user_attr(storage.trial_id(study, 1), "verified", 1)
    monkeypatch.setattr(verify_lib, "train_proxy", _fake_train({"0": 0.2, "1": 0.5, "2": 0.4, "3": 0.6}))
    plan = make_plan(study, cfg, epochs=3)
    outcome = verify_front(study, plan, select(load_study(url, "j"), 3), tmp_path / "runs")
    assert outcome.trained == [3, 1, 2, 0] and outcome.agreement == {
        "n": 4,
        "spearman": 1.0,
        "kendall": 1.0,
        "trials": [0, 1, 2, 3],
    }
    reread = load_study(url, "j")
    assert verified(reread, 1)[MAP] == 0.5 and verifications(reread)[plan.id]["agreement"]["n"] == 4
    assert verify_front(reread, plan, select(reread, 3), tmp_path / "runs").skipped == [3, 1, 2, 0]


def test_a_failing_trial_is_reported_and_stores_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'f.db'}", worker=True)
    cfg = load_preset("smoke")
    study = open_study(cfg, storage, "f")
    for m in (0.1, 0.3):
        study.add_trial(optuna.trial.create_trial(values=[m, 10 * m, 10 * m], user_attrs={"trained": True}))
    outcome = verify_front(study, make_plan(study, cfg, epochs=1), select(study, 2), tmp_path / "runs")
    assert set(outcome.failed) == {0, 1} and "stores no model_yaml" in outcome.failed[0]
    assert results(study, 0) == {} and outcome.agreement is None
    storage.close()


def _four_trials(url: str, name: str) -> optuna.Study:
    """A study whose four trials all stand on the front (more mAP costs more); trial 0 is the reference."""
    storage = open_storage(url, worker=True)
    study = open_study(load_preset("smoke"), storage, name)
    for i, m in enumerate([0.1, 0.3, 0.2, 0.4]):
        attrs = {
            "trained": True,
            "model_yaml": "nc: 5\n",
            "summary": f"a{i}",
            **({"reference": True} if i == 0 else {}),
        }
        study.add_trial(optuna.trial.create_trial(values=[m, 1 + 10 * m, 1 + 10 * m], user_attrs=attrs))
    storage.close()
    return study


def test_pick_ranks_by_verified_values_only_when_one_verification_covers_every_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'pick.db'}"
    study = _four_trials(url, "p")
    out = tmp_path / "x.yaml"

    def exported(*extra: str) -> tuple[int, str]:
        assert export.main(["--study", "p", "--storage", url, "--out", str(out), *extra]) == 0
        text = out.read_text()
        return int(text.split("trial ", 1)[1].split()[0]), text

    assert exported("--pick", "best-map")[0] == 3  # the proxy's best
    monkeypatch.setattr(verify_lib, "train_proxy", _fake_train({"0": 0.2, "1": 0.9, "2": 0.4, "3": 0.6}))
    plan = make_plan(study, load_preset("smoke"), epochs=3)
    verify_front(study, plan, select(study, 2), tmp_path / "runs")  # 3, 1 and the reference 0: not trial 2
    number, text = exported("--pick", "best-map")
    assert number == 3 and "ranked by the verified" not in text  # trial 2 unverified: the proxy ranks, as before
    assert "| verified mAP50-95 0.6000 (from scratch, 3 epochs) |" in text  # the chosen trial's own is still shown
    assert exported("--pick", "best-map", "--max-gflops", "4.5")[0] == 1  # 0 and 1 only: both verified
    verify_front(study, plan, select(study, 3), tmp_path / "runs")  # now every Pareto trial
    number, text = exported("--pick", "best-map")
    assert number == 1 and f"ranked by the verified values (verification {plan.id})" in text
    assert "# mAP50-95 0.3000 (proxy, train imgsz None) | verified mAP50-95 0.9000 (from scratch, 3 epochs) |" in text


def test_rank_correlations_match_known_values() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert kendall([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.6)
    assert kendall([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(4 / 5)  # tau-b with a tie on each side
    assert spearman([1, 1, 1], [1, 2, 3]) != spearman([1, 1, 1], [1, 2, 3])  # NaN: a constant side


def test_adapt_nc_sets_the_class_count_of_a_stored_yaml() -> None:
    text = (
        "# architecture abc\nnc: 5\nscale: n\nscales:\n  n: [0.5, 0.25, 1024]\nbackbone:\n  - [-1, 1, Conv, [64, 3]]\n"
    )
    assert adapt_nc(text, 5) is text
    adapted = adapt_nc(text, 7)
    assert yaml.safe_load(adapted)["nc"] == 7 and adapted.replace("nc: 7", "nc: 5") == text
    with pytest.raises(ValueError, match="no top-level 'nc:'"):
        adapt_nc("backbone: []\n", 3)


def test_the_verify_section_of_a_preset(tmp_path: Path) -> None:
    assert load_preset("smoke").verify_schedule == {**load_preset("smoke").schedule, "epochs": 16}
    preset = tmp_path / "p.yaml"
    raw = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
    preset.write_text(yaml.safe_dump({**raw, "verify": {"epochs": 30, "lr0": 0.01}}))
    cfg = load_preset(str(preset))
    assert cfg.verify_schedule == {**cfg.schedule, "epochs": 30, "lr0": 0.01}
    for bad, key in (({"lr": 1}, "verify.lr"), ({"epochs": 0}, "verify.epochs"), ([1], "verify")):
        preset.write_text(yaml.safe_dump({**raw, "verify": bad}))
        with pytest.raises(ConfigError, match=f"{preset}: {key}: "):
            load_preset(str(preset))


def test_the_preset_is_found_from_the_study(tmp_path: Path, tiny_dataset: Path) -> None:
    raw = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
    preset = tmp_path / "mine.yaml"
    preset.write_text(yaml.safe_dump(raw))
    storage = open_storage(f"sqlite:///{tmp_path / 'p.db'}", worker=True)
    study = open_study(load_preset(str(preset)), storage, "mine")
    preset.write_text(yaml.safe_dump({**raw, "verify": {"epochs": 3}}))  # a verify: section added after the search
    assert study_preset(study).verify_schedule["epochs"] == 3
    preset.write_text(yaml.safe_dump({**raw, "synthetic": {**raw["synthetic"], "seed": 9}}))
    with pytest.raises(UserError, match="name the study's dataset with --data"):
        study_preset(study)
    assert study_preset(study, str(tiny_dataset)).dataset.yaml_path is not None  # --data: another dataset, on purpose
    preset.unlink()  # gone: the copy stored in the study
    cfg = study_preset(study)
    assert cfg.name == "mine" and cfg.verify_schedule["epochs"] == 16
    assert (
        make_plan(study, cfg).study_dataset
        and not make_plan(study, study_preset(study, str(tiny_dataset))).study_dataset
    )
    storage.close()
