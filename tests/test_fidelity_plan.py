"""The proxy-fidelity benchmark's plan: which units run, and which one-off step each waits on."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks.common import diverse_architectures
from benchmarks.proxy_fidelity import plan, unit_threads
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
