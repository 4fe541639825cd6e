"""The proxy-fidelity benchmark's plan: which units run, and which one-off step each waits on."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from benchmarks.common import diverse_architectures, host
from benchmarks.proxy_fidelity import (
    REFERENCE_EPOCHS,
    every_split,
    hosts,
    paired_difference,
    plan,
    summary_name,
    unit_threads,
)
from nas.ranking import spearman
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
    block = "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {m}\nmodel name\t: AMD EPYC\n"
    cpuinfo.write_text(block.format(n=0, m=1) + "stepping\t: 1\n\n" + block.format(n=1, m=17) + "stepping\t: 2\n")
    here = host(cpuinfo)
    assert here["cpu_family_model_stepping"] == "25/1/1"  # the first processor's, never a mix of two
    assert here["cpu_capability"] in {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"}
    assert host(tmp_path / "missing")["cpu_family_model_stepping"] is None
    done = {
        ("a", "reference", 0): {"host": {**here, "cpu": "AMD EPYC"}},
        ("b", "reference", 0): {"host": {**here, "cpu": "AMD EPYC"}},
        ("a", "reference", 1): {},
        ("a", "scratch", 0): {"host": {**here, "cpu": "other"}},
    }
    assert hosts(done, "reference") == {f"AMD EPYC 25/1/1 {here['cpu_capability']}": 2, "not recorded": 1}
