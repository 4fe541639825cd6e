"""The proxy-fidelity benchmark's plan: which units run, and which one-off step each waits on."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.common import dataset_digest, diverse_architectures, host
from benchmarks.proxy_fidelity import (
    REFERENCE_EPOCHS,
    Bench,
    against_the_rest,
    beyond_cost,
    every_split,
    hosts,
    paired_difference,
    plan,
    print_table,
    role_mode,
    summarize,
    summary_name,
    unit_threads,
)
from nas.data.synthetic import SyntheticSpec, generate
from nas.ranking import partial_spearman, ranks, spearman
from nas.space import load_space


def test_a_second_proxy_seed_is_a_second_study_with_its_own_supernet_and_warm_base() -> None:
    archs = diverse_architectures(load_space("yolo11_backbone"), 4, 0)
    args = SimpleNamespace(
        modes=["supernet0", "supernet1-lr0.0003", "warm", "zico"],
        proxy_seeds=[0, 1],
        reference_seeds=[0, 1],
        second_seed_on=2,
    )
    units = plan(archs, args)
    steps = [u for u in units if ":" in u.role]
    assert [(u.role, u.seed) for u in steps] == [
        ("supernet0:base", 0),  # supernet1-lr0.0003 trains from the same supernet: no second step
        ("warm:base", 0),
        ("supernet0:base", 1),
        ("warm:base", 1),
    ]
    by_id = {u.id: i for i, u in enumerate(units)}
    for u in units:
        if u.role in ("supernet0", "supernet1-lr0.0003"):
            assert u.needs == (archs[0].key, "supernet0:base", u.seed)
        elif u.role == "warm":
            assert u.needs == (archs[0].key, "warm:base", u.seed)
        else:
            assert u.needs is None
        if u.needs:
            assert by_id[u.needs] < by_id[u.id]  # a step is queued before the units waiting on it
    # every mode on all four with seed 0, on the first two with seed 1; the reference likewise
    for role in ("reference", *args.modes):
        assert sorted((u.key, u.seed) for u in units if u.role == role) == sorted(
            [(a.key, 0) for a in archs] + [(a.key, 1) for a in archs[:2]]
        )


def test_a_unit_gets_its_workers_share_of_the_cores_and_every_core_only_when_it_runs_alone() -> None:
    assert unit_threads(workers=2, others_running=0, others_runnable=True, cpus=2) == 1  # the other starts now
    assert unit_threads(workers=2, others_running=1, others_runnable=False, cpus=2) == 1
    assert unit_threads(workers=2, others_running=0, others_runnable=False, cpus=2) == 2  # the rest waits on it
    assert unit_threads(workers=3, others_running=2, others_runnable=True, cpus=16) == 5
    assert unit_threads(workers=4, others_running=1, others_runnable=True, cpus=2) == 1  # at least one


def test_every_split_averages_the_agreement_of_two_halves_of_the_seeds_over_every_split() -> None:
    rng = random.Random(0)
    values = {f"a{i}": {seed: rng.random() for seed in range(4)} for i in range(6)}
    s = every_split(values, [0, 1, 2, 3])

    def halves(a: tuple[int, int], b: tuple[int, int]) -> float:
        def mean(h: tuple[int, int]) -> list[float]:
            return [(values[k][h[0]] + values[k][h[1]]) / 2 for k in values]

        return spearman(mean(a), mean(b))

    expected = [halves((0, 1), (2, 3)), halves((0, 2), (1, 3)), halves((0, 3), (1, 2))]
    assert s["n_splits"] == 3 and s["seeds_per_half"] == 2 and s["n_architectures"] == 6
    assert s["mean_spearman"] == pytest.approx(sum(expected) / 3, abs=1e-4)
    assert s["min_spearman"] == pytest.approx(min(expected), abs=1e-4)
    assert s["max_spearman"] == pytest.approx(max(expected), abs=1e-4)
    r = sum(expected) / 3
    assert s["spearman_brown_estimate_of_mean"] == pytest.approx(2 * r / (1 + r), abs=1e-4)

    agree = {f"a{i}": dict.fromkeys(range(7), i / 10) for i in range(5)}
    s = every_split(agree, list(range(7)))
    assert s["n_splits"] == 70  # 7C3 * 4C3 / 2: every seed but one in two halves of three
    assert s["mean_spearman"] == 1.0 and s["spearman_brown_estimate_of_mean"] == 1.0
    assert every_split(agree, [0, 1, 2]) is None  # halves of one seed are single seeds: no mean


def test_one_training_is_judged_against_the_mean_of_every_other_seed_once_per_seed() -> None:
    rng = random.Random(1)
    values = {f"a{i}": {seed: rng.random() for seed in range(4)} for i in range(6)}
    one = against_the_rest(values, [0, 1, 2, 3], 1)

    def rest_mean(drawn: tuple[int, ...]) -> list[float]:
        return [statistics.fmean(v[s] for s in range(4) if s not in drawn) for v in values.values()]

    expected = {s: spearman([v[s] for v in values.values()], rest_mean((s,))) for s in range(4)}
    assert one["n_draws"] == 4 and one["seeds_in_rest"] == 3 and one["n_architectures"] == 6
    assert one["each_seed"] == {str(s): round(r, 4) for s, r in expected.items()}
    assert one["mean_spearman"] == pytest.approx(statistics.fmean(expected.values()), abs=1e-4)
    assert (one["min_spearman"], one["max_spearman"]) == (
        round(min(expected.values()), 4),
        round(max(expected.values()), 4),
    )

    two = against_the_rest(values, [0, 1, 2, 3], 2)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]  # ordered draws: (0, 1) and (2, 3) both count
    means = [spearman([statistics.fmean(v[s] for s in d) for v in values.values()], rest_mean(d)) for d in pairs]
    assert two["n_draws"] == 6 and two["each_seed"] is None
    assert two["mean_spearman"] == pytest.approx(statistics.fmean(means), abs=1e-4)

    values["late"] = {0: 0.5}  # an architecture without every seed is left out, not judged on fewer
    assert against_the_rest(values, [0, 1, 2, 3], 1)["n_architectures"] == 6
    assert against_the_rest(values, [0, 1, 2, 3], 4) is None and against_the_rest(values, [0, 1, 2, 3], 0) is None


def test_paired_difference_tells_a_proxy_from_the_default_only_beyond_the_resampling_noise() -> None:
    ref = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    same = paired_difference(ref, ref, ref)
    assert same == {"spearman_difference": 0.0, "interval_90": [0.0, 0.0]}
    reversed_ = paired_difference(ref, ref[::-1], ref)
    assert reversed_["spearman_difference"] == 2.0 and reversed_["interval_90"][0] > 0
    assert paired_difference(ref, [0.3] * 6, ref) is None  # a constant proxy has no ranks


def test_a_summary_of_another_reference_schedule_or_validation_set_never_replaces_the_headline_file() -> None:
    assert summary_name(REFERENCE_EPOCHS, None) == "proxy_fidelity"
    assert summary_name(REFERENCE_EPOCHS + 14, None) == f"proxy_fidelity_ref{REFERENCE_EPOCHS + 14}"
    assert summary_name(REFERENCE_EPOCHS, 128) == "proxy_fidelity_val128"
    assert summary_name(REFERENCE_EPOCHS + 14, 128) == f"proxy_fidelity_ref{REFERENCE_EPOCHS + 14}_val128"


def test_each_record_names_the_cpu_family_it_ran_on_and_the_summary_counts_the_references_by_host(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    block = "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {m}\nmodel name\t: Test {m}\n"
    cpuinfo.write_text(block.format(n=0, m=1) + "stepping\t: 1\n\n" + block.format(n=1, m=17) + "stepping\t: 2\n")
    here = host(cpuinfo)
    assert here["cpu_family_model_stepping"] == "25/1/1"  # the first processor's, never a mix of two
    assert here["cpu"] == "Test 1"
    assert here["cpu_capability"] in {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"}
    assert host(tmp_path / "missing")["cpu_family_model_stepping"] is None
    assert here["adam_step"] == "fused"
    older = {k: v for k, v in here.items() if k != "adam_step"}  # recorded before the fused step
    done = {
        ("a", "reference", 0): {"host": {**here, "cpu": "AMD EPYC"}},
        ("b", "reference", 0): {"host": {**here, "cpu": "AMD EPYC"}},
        ("c", "reference", 0): {"host": {**older, "cpu": "AMD EPYC"}},
        ("a", "reference", 1): {},
        ("a", "scratch", 0): {"host": {**here, "cpu": "other"}},
    }
    cpu = f"AMD EPYC 25/1/1 {here['cpu_capability']}"
    assert hosts(done, "reference") == {
        f"{cpu}, fused Adam step": 2,
        f"{cpu}, for-loop Adam step": 1,
        "not recorded": 1,
    }


def test_agreement_beyond_gflops_is_what_the_ranks_share_once_the_cost_ranks_are_regressed_out() -> None:
    rng = random.Random(3)
    cost = [rng.random() for _ in range(12)]
    merit = [rng.random() for _ in range(12)]  # what the cost does not tell
    ref = [c + m for c, m in zip(cost, merit, strict=True)]
    follows_cost = [c + 0.1 * rng.random() for c in cost]
    sees_merit = [0.2 * c + m for c, m in zip(cost, merit, strict=True)]

    def residual_correlation(a: list[float], b: list[float]) -> float:  # least squares on the ranks, by hand
        z = ranks(cost)
        mz = sum(z) / len(z)

        def residuals(y: list[float]) -> list[float]:
            r = ranks(y)
            my = sum(r) / len(r)
            slope = sum((zi - mz) * (ri - my) for zi, ri in zip(z, r, strict=True)) / sum((zi - mz) ** 2 for zi in z)
            return [ri - my - slope * (zi - mz) for zi, ri in zip(z, r, strict=True)]

        ea, eb = residuals(a), residuals(b)
        num = sum(x * y for x, y in zip(ea, eb, strict=True))
        return num / (sum(x * x for x in ea) * sum(y * y for y in eb)) ** 0.5

    for proxy in (follows_cost, sees_merit):
        assert partial_spearman(proxy, ref, cost) == pytest.approx(residual_correlation(proxy, ref))
    assert spearman(follows_cost, ref) > 0.3  # a plain Spearman credits the cost's share...
    assert abs(beyond_cost(follows_cost, ref, cost)["partial_spearman"]) < 0.5  # ...the partial one does not
    assert beyond_cost(sees_merit, ref, cost)["partial_spearman"] > 0.8
    assert beyond_cost(cost, ref, cost) is None  # ranks exactly like the cost: nothing beyond it
    assert beyond_cost(sees_merit[:4], ref[:4], cost[:4]) is None  # 4 points: a partial correlation says nothing


def test_the_references_repeatability_beyond_gflops_drops_what_its_halves_share_only_through_the_cost() -> None:
    rng = random.Random(5)
    keys = [f"a{i}" for i in range(30)]
    cost = {k: rng.random() for k in keys}
    only_cost = {k: {s: cost[k] + 0.05 * rng.random() for s in range(4)} for k in keys}  # seeds agree via cost
    plain, beyond = every_split(only_cost, [0, 1, 2, 3]), every_split(only_cost, [0, 1, 2, 3], cost)
    assert plain["mean_spearman"] > 0.9 and abs(beyond["mean_spearman"]) < 0.4
    assert beyond["n_splits"] == plain["n_splits"] == 3
    assert every_split(only_cost, [0, 1, 2, 3], {k: cost[k] for k in keys[:4]}) is None  # too few with a cost


def test_the_summary_counts_hosts_leaves_a_reused_steps_time_unknown_and_ranks_beyond_gflops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs = diverse_architectures(load_space("yolo11_backbone"), 6, 0)
    args = SimpleNamespace(
        modes=["supernet0", "gflops"], proxy_seeds=[0], reference_seeds=[0, 1, 2, 3], second_seed_on=6, n=6,
        reference_epochs=REFERENCE_EPOCHS, seed=0, runs_file=tmp_path / "runs.jsonl", workers=2,
    )  # fmt: skip
    bench = Bench("light", "cpu", REFERENCE_EPOCHS, 8, tmp_path)
    units = plan(archs, args)
    rng = random.Random(0)
    cost = {a.key: -rng.random() for a in archs}
    bump = {a.key: 0.04 * (i % 3) for i, a in enumerate(archs)}
    here = {"cpu": "AMD EPYC", "cpu_family_model_stepping": "25/1/1", "cpu_capability": "AVX2"}
    records = []
    for u in units:
        record = {"key": u.key, "role": u.role, "seed": u.seed, "error": None, "note": None, "seconds": 0.0}
        record["settings"] = role_mode(u.role)[0].settings(bench, u.seed)
        if u.role == "supernet0:base":
            record |= {"epochs": 16, "note": "reused the existing supernet_e16.pt: its training time is not known"}
        elif u.role == "gflops":
            record["score"] = cost[u.key]
        else:  # the reference and the proxy follow the cost, and something else
            other = 0.05 * rng.random() if u.role == "reference" else bump[u.key]
            record["map50_95"] = 0.5 + 0.1 * cost[u.key] + other
        if u.role == "reference" and u.seed < 2:
            record["host"] = here
        records.append(record)
    s = summarize(archs, units, records, bench, args)
    assert s["complete"] and s["reference"]["hosts"] == {
        "AMD EPYC 25/1/1 AVX2, for-loop Adam step": 12,
        "not recorded": 12,
    }
    assert s["by_mode"]["supernet0"]["one_off"]["seconds"] is None  # not the 0.0 s of reusing a file
    first = s["by_mode"]["supernet0"]["spearman"]
    assert s["by_mode"]["supernet0"]["spearman_each_proxy_seed"] == {"by_seed": {"0": first}, "mean": first}
    proxy = {r["key"]: r["map50_95"] for r in records if r["role"] == "supernet0"}
    keys = [a.key for a in archs]
    ref = [statistics.fmean(r["map50_95"] for r in records if r["role"] == "reference" and r["key"] == k) for k in keys]
    beyond = s["by_mode"]["supernet0"]["beyond_gflops"]
    expected = partial_spearman([proxy[k] for k in keys], ref, [cost[k] for k in keys])
    assert beyond["partial_spearman"] == round(expected, 4)
    assert beyond["interval_90"][0] <= beyond["partial_spearman"] <= beyond["interval_90"][1]
    assert "beyond_gflops" not in s["by_mode"]["gflops"]
    assert s["reference"]["repeatability_beyond_gflops"]["n_splits"] == 3
    assert [r["seeds_drawn"] for r in s["reference"]["against_the_rest"]] == [1]  # two of four is a half: splits
    assert s["reference"]["against_the_rest"][0]["n_draws"] == 4
    print_table(s)
    one = s["reference"]["against_the_rest"][0]["mean_spearman"]
    printed = capsys.readouterr().out
    assert f"one training against the mean of the other 3, over the 4 draws: Spearman {one:.3f}" in printed
    # without the gflops mode there is no cost to go beyond; with it on some architectures, no reference figure
    no_cost = SimpleNamespace(**{**vars(args), "modes": ["supernet0"]})
    s = summarize(archs, plan(archs, no_cost), records, bench, no_cost)
    assert "beyond_gflops" not in s["by_mode"]["supernet0"] and s["reference"]["repeatability_beyond_gflops"] is None
    some_cost = [r for r in records if r["role"] != "gflops" or r["key"] != archs[0].key]
    s = summarize(archs, units, some_cost, bench, args)
    assert s["reference"]["repeatability_beyond_gflops"] is None
    assert s["by_mode"]["supernet0"]["beyond_gflops"] is not None  # a proxy's figure over the 5 that have it


def test_the_dataset_digest_is_the_same_for_the_same_data_anywhere_and_changes_with_a_label(tmp_path) -> None:
    spec = SyntheticSpec(train_images=4, val_images=2, imgsz=64, seed=3)
    here, there = generate(spec, tmp_path / "a"), generate(spec, tmp_path / "b")
    assert here.read_text() != there.read_text()  # the YAML names its folder: left out
    assert dataset_digest(here) == dataset_digest(there)
    (there.parent / "labels" / "train.cache").write_bytes(b"Ultralytics' label cache")
    assert dataset_digest(here) == dataset_digest(there)
    label = next((there.parent / "labels" / "train").glob("*.txt"))
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")  # one more box
    assert dataset_digest(here) != dataset_digest(there)


def test_the_training_speed_mode_ranks_by_minus_the_mean_batch_loss_and_never_reuses_scratch_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import benchmarks.proxy_fidelity as pf

    trained = pf.Outcome(0.1, 2.0, batch_losses=(3.0, 2.0, 1.0))

    def train(*args, keep_losses: bool = False, **kwargs) -> pf.Outcome:  # the losses only where asked for
        return trained if keep_losses else trained._replace(batch_losses=())

    monkeypatch.setattr(pf, "_train", train)
    bench = Bench("smoke", "cpu", REFERENCE_EPOCHS, 4, tmp_path)
    out = pf.training_speed(bench, None, 0, tmp_path)  # type: ignore[arg-type]
    assert out.score == -2.0  # less loss summed: ranked higher
    assert out.batch_losses == (3.0, 2.0, 1.0) and out.map50_95 == 0.1
    mode, _ = role_mode("tse")
    assert mode.field == "score"
    assert mode.settings(bench, 0) != role_mode("scratch")[0].settings(bench, 0)  # same training, other records
    monkeypatch.setattr(pf, "_worker_setup", lambda threads: None)  # a worker's signal and thread set-up
    tse = pf.run_unit(bench, (), "tse", 0, 1)
    assert (tse["error"], tse["score"], tse["batch_losses"], tse["map50_95"]) == (None, -2.0, [3.0, 2.0, 1.0], 0.1)
    plain = pf.run_unit(bench, (), "scratch", 0, 1)
    assert plain["score"] is None and "batch_losses" not in plain and plain["map50_95"] == 0.1
    trained = trained._replace(batch_losses=(1.0, math.nan))
    assert pf.run_unit(bench, (), "tse", 0, 1)["error"].startswith("FloatingPointError")


def test_the_training_speed_mode_keeps_one_loss_per_training_batch(tmp_path) -> None:
    import benchmarks.proxy_fidelity as pf

    bench = Bench("smoke", "cpu", REFERENCE_EPOCHS, 4, tmp_path, proxy_epochs=1)
    train_images, batch = bench.cfg.dataset.synthetic.train_images, bench.cfg.schedule["batch"]
    (tmp_path / "unit").mkdir()
    out = pf.training_speed(bench, bench.cfg.space.stock(), 0, tmp_path / "unit")
    assert len(out.batch_losses) == -(-train_images // batch)  # one epoch
    assert all(math.isfinite(x) and x > 0 for x in out.batch_losses)
    assert out.score == pytest.approx(-statistics.fmean(out.batch_losses))


def test_a_low_resolution_scratch_mode_trains_its_epochs_at_its_size_and_keeps_scratch_records_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import benchmarks.proxy_fidelity as pf

    schedules: list[dict] = []

    def train(bench, arch, schedule, seed, workdir, **kwargs) -> pf.Outcome:
        schedules.append(schedule)
        return pf.Outcome(0.2, 1.0)

    monkeypatch.setattr(pf, "_train", train)
    bench = Bench("light", "cpu", REFERENCE_EPOCHS, 4, tmp_path)
    mode, step = role_mode("scratch-e8-64px")
    assert not step and mode.prepare is None and mode.field == "map50_95"
    assert mode.run(bench, None, 0, tmp_path).map50_95 == 0.2  # type: ignore[arg-type]
    role_mode("scratch-e4-64px")[0].run(bench, None, 0, tmp_path)  # type: ignore[arg-type]
    # Ultralytics validates a training at its imgsz: one key sets both
    assert schedules == [{**bench.cfg.schedule, "epochs": e, "imgsz": 64} for e in (8, 4)]
    settings = mode.settings(bench, 0)
    assert settings["init"] == "scratch" and settings["schedule"] == schedules[0]
    assert role_mode("scratch-e4-64px")[0].settings(bench, 0)["schedule"] == schedules[1]
    # the scratch mode's settings are as before, so its recorded units still count
    plain = role_mode("scratch")[0].settings(bench, 0)
    assert set(plain) == {"study", "dataset", "device", "init", "schedule"}
    assert plain["schedule"] == {**bench.cfg.schedule, "epochs": bench.proxy_epochs}


def test_a_modes_spearman_is_given_with_each_proxy_seed_and_their_mean() -> None:
    from benchmarks.proxy_fidelity import spearman_by_seed

    reference = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    values = {"a": {0: 1.0, 1: 4.0}, "b": {0: 2.0, 1: 3.0}, "c": {0: 3.0, 1: 2.0}, "d": {0: 4.0}}
    each = spearman_by_seed(values, [0, 1, 2], reference)
    # seed 1 has three architectures, in the reference's reverse order; seed 2 none
    assert each == {"by_seed": {"0": 1.0, "1": -1.0, "2": None}, "mean": 0.0}
    assert spearman_by_seed({"a": {0: 1.0}, "b": {0: 1.0}, "c": {0: 1.0}}, [0], reference)["by_seed"] == {"0": None}


def test_a_few_shot_mode_validates_each_candidate_from_the_sub_supernet_of_its_operator_at_the_split_point(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import benchmarks.proxy_fidelity as pf
    from nas.measure.proxy import ProxyResult
    from nas.space import Choice

    calls: list[tuple] = []
    monkeypatch.setattr(pf, "train_supernet", lambda cfg, root, device, seed: root / "base.pt")
    monkeypatch.setattr(
        pf, "train_split", lambda cfg, base, point, op, epochs, device, seed: base.with_name(f"{point}-{op}-{epochs}")
    )

    def proxy(arch, cfg, weights, run_dir, device, seed):
        calls.append((weights.name, cfg.schedule["epochs"], cfg.supernet_epochs))
        return ProxyResult(0.3, 0.5, 0.0, 1.0, 0, 1), {}

    monkeypatch.setattr(pf, "supernet_proxy", proxy)
    bench = Bench("light", "cpu", REFERENCE_EPOCHS, 4, tmp_path)
    mode, step = role_mode("fewshot0-down_p2-f4")
    assert not step and mode.step == "split-down_p2-f4" and mode.prepare is not None
    arch = bench.cfg.space.architecture({"down_p2": Choice("GhostV2"), "c3k2_p3": Choice("C3k2_ACmix")})
    assert mode.run(bench, arch, 1, tmp_path).map50_95 == 0.3
    role_mode("fewshot0-down_p2-f0")[0].run(bench, bench.cfg.space.stock(), 0, tmp_path)
    assert calls == [("down_p2-GhostV2-4", 0, 16), ("down_p2-Conv-0", 0, 16)]  # validated as inherited
    # the split is part of the settings: neither few-shot mode reuses the other's or supernet0's records
    settings = {name: role_mode(name)[0].settings(bench, 0) for name in ("fewshot0-down_p2-f4", "fewshot0-down_p2-f0")}
    assert settings["fewshot0-down_p2-f4"]["split"]["epochs"] == 4 and settings["fewshot0-down_p2-f0"]["split"] == {
        "point": "down_p2",
        "epochs": 0,
        "schedule": None,
    }
    assert settings["fewshot0-down_p2-f4"]["split"]["schedule"]["warmup_epochs"] == 0.0
    plain = role_mode("supernet0")[0].settings(bench, 0)
    assert {k: v for k, v in settings["fewshot0-down_p2-f4"].items() if k != "split"} == plain
    archs = diverse_architectures(load_space("yolo11_backbone"), 2, 0)
    args = SimpleNamespace(modes=["fewshot0-down_p2-f4"], proxy_seeds=[0, 1], reference_seeds=[0], second_seed_on=2)
    steps = [(u.role, u.seed) for u in plan(archs, args) if ":" in u.role]
    assert steps == [("fewshot0-down_p2-f4:split-down_p2-f4", 0), ("fewshot0-down_p2-f4:split-down_p2-f4", 1)]


def test_supernet_modes_share_a_one_off_supernet_exactly_when_its_epochs_kernels_and_sampling_agree(tmp_path) -> None:
    import benchmarks.proxy_fidelity as pf

    bench = Bench("light", "cpu", REFERENCE_EPOCHS, 4, tmp_path)
    trained = ("supernet_epochs", "supernet_kernels", "supernet_sampling")
    supernets = {}
    for name, mode in pf.MODES.items():
        if name.startswith("supernet"):
            settings = mode.settings(bench, 0)
            supernets[name] = (mode.makes, tuple(settings.get(k) for k in trained))
    assert {"supernet0-e3-fair", "supernet0-e6-fair", "supernet0-e12-fair"} <= supernets.keys()
    assert supernets["supernet0-e12-fair"][1] == (12, None, "fair")  # uniform and separate kernels go unstated
    for (a, (makes_a, how_a)), (b, (makes_b, how_b)) in itertools.combinations(supernets.items(), 2):
        assert (makes_a == makes_b) == (how_a == how_b), (a, b)


def test_pooling_studies_averages_every_draw_of_k_proxy_seeds_against_the_reference() -> None:
    from benchmarks.proxy_fidelity import pooled_studies

    reference = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    # each seed swaps one pair of neighbours; their mean is in the reference's order
    values = {"a": {0: 1.0, 1: 2.0}, "b": {0: 3.0, 1: 1.0}, "c": {0: 2.0, 1: 4.0}, "d": {0: 4.0, 1: 3.0}}
    values["e"] = {0: 9.0}  # one seed only: left out, so every k is judged on the same architectures
    one, two = pooled_studies(values, [0, 1], reference | {"e": 0.5})
    assert one == {
        "studies_pooled": 1,
        "n_architectures": 4,
        "n_draws": 2,
        "mean_spearman": 0.7,
        "min_spearman": 0.6,
        "max_spearman": 0.8,
    }
    assert two["studies_pooled"] == 2 and two["n_draws"] == 1 and two["mean_spearman"] == 1.0
    assert pooled_studies(values, [0], reference) == []  # one study: nothing to pool
