"""How much of the proxy's ranking noise is the validation set's? mAP50-95 on disjoint validation sets of n images.

The light dataset validates on 128 images. Generated images depend only on (seed, index), so a set with more
validation images keeps the same training images and starts its validation images with light's own 128. Each
of the proxy_fidelity architectures (same draw) inherits its path of the light supernet (supernet0: BatchNorm
recalibrated on the same training images every time, no training) and is validated on every disjoint subset of
--sizes images among --pool validation images. Nothing but the validation images changes between the runs of one
architecture, so the spread is the validation set's alone.

Reported per size n: the mean over architectures of mAP50-95's standard deviation across the disjoint subsets;
the mean Spearman between the rankings on two disjoint subsets (how well a ranking on n images reproduces
itself), against the ranking on the whole pool, and against proxy_fidelity's from-scratch reference (validated on
light's 128 images, the first subset of 128). Each validation is appended to --runs-file as it finishes;
run again to resume.

    python -m benchmarks.val_size_noise [--sizes 128 512] [--pool 2048]
"""

from __future__ import annotations

import itertools
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import diverse_architectures, parser, say, write_result
from benchmarks.proxy_fidelity import SUPERNET_EPOCHS, _preset
from nas.data.datasets import Dataset
from nas.data.synthetic import generate
from nas.measure.supernet import supernet_file, supernet_proxy
from nas.ranking import spearman

NAME = "val_size_noise"
RESULTS = Path(__file__).parent / "results"
RUNS_FILE = RESULTS / "val_size_noise_runs.jsonl"
PROXY_FIDELITY_RUNS = RESULTS / "proxy_fidelity_runs.jsonl"
SUPERNET = Path("nas_runs/benchmarks/proxy_fidelity/supernet-light-s0")  # proxy_fidelity's, seed 0


def subset_yamls(data_yaml: Path, sizes: list[int], pool: int, out: Path) -> dict[str, Path]:
    """Write one data YAML per disjoint subset of every size (same training images); return them by subset id."""
    root = data_yaml.parent
    images = sorted((root / "images" / "val").glob("*.png"))[:pool]
    names = data_yaml.read_text().split("names:", 1)[1]
    found = {}
    for n in [*sizes, pool]:
        for i in range(pool // n):
            sid = f"n{n}-{i}"
            listing = out / f"{sid}.txt"
            listing.write_text("\n".join(str(p) for p in images[i * n : (i + 1) * n]) + "\n")
            yaml_path = out / f"{sid}.yaml"
            yaml_path.write_text(f"train: {root / 'images' / 'train'}\nval: {listing}\nnames:{names}")
            found[sid] = yaml_path
    return found


def reference_means(path: Path) -> dict[str, float]:
    """Return proxy_fidelity's reference mAP50-95 (mean over its seeds) by architecture key, from its runs file."""
    found: dict[str, list[float]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["role"] == "reference" and not r.get("error"):
                found.setdefault(r["key"], []).append(r["map50_95"])
    return {k: statistics.mean(v) for k, v in found.items()}


def summarize(records: list[dict], keys: list[str], sizes: list[int], pool: int, ref: dict[str, float]) -> dict:
    """Return the per-size spread and ranking agreement from the validation records; with the reference's mAP
    by key (``ref``, all ``keys`` present), each size's mean Spearman against it too (the reference validates on
    light's 128 images, the first subset of 128)."""
    maps = {(r["key"], r["subset"]): r["map50_95"] for r in records}
    whole = [maps.get((k, f"n{pool}-0")) for k in keys]
    reference = [ref[k] for k in keys] if all(k in ref for k in keys) else None
    out: dict = {"pool": pool, "architectures": len(keys), "by_size": {}}
    if reference and None not in whole:
        out["pool_vs_reference_spearman"] = round(spearman(whole, reference), 3)
    for n in sizes:
        subsets = [f"n{n}-{i}" for i in range(pool // n)]
        if not all((k, s) in maps for k in keys for s in subsets):
            continue
        spreads = [statistics.stdev([maps[k, s] for s in subsets]) for k in keys]
        ranks = {s: [maps[k, s] for k in keys] for s in subsets}
        pairs = [spearman(ranks[a], ranks[b]) for a, b in itertools.combinations(subsets, 2)]
        vs_whole = [spearman(ranks[s], whole) for s in subsets] if None not in whole else []
        out["by_size"][str(n)] = {
            "subsets": len(subsets),
            "map_std_mean": round(statistics.mean(spreads), 4),
            "map_std_max": round(max(spreads), 4),
            "split_spearman_mean": round(statistics.mean(pairs), 3),
            "split_spearman_min": round(min(pairs), 3),
            "vs_pool_spearman_mean": round(statistics.mean(vs_whole), 3) if vs_whole else None,
        }
        if reference:
            vs_ref = [spearman(ranks[s], reference) for s in subsets]
            out["by_size"][str(n)]["vs_reference_spearman_mean"] = round(statistics.mean(vs_ref), 3)
            out["by_size"][str(n)]["vs_reference_spearman_first"] = round(vs_ref[0], 3)
    return out


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--pool", type=int, default=2048)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--runs-file", type=Path, default=RUNS_FILE)
    args = ap.parse_args()
    if any(n < 2 or args.pool % n or args.pool // n < 2 for n in args.sizes):
        ap.error("every size must divide --pool at least twice")
    cfg = _preset("light")
    spec = replace(cfg.dataset.synthetic, val_images=args.pool)
    data_yaml = generate(spec)
    weights = supernet_file(SUPERNET.resolve(), SUPERNET_EPOCHS)
    if not weights.is_file():
        ap.error(f"no supernet at {weights}: run python -m benchmarks.proxy_fidelity --modes supernet0 first")
    archs = diverse_architectures(cfg.space, args.n, 0)
    done = {}
    if args.runs_file.is_file():
        for line in args.runs_file.read_text().splitlines():
            r = json.loads(line)
            done[r["key"], r["subset"]] = r
    with tempfile.TemporaryDirectory(prefix="val-size-") as tmp, args.runs_file.open("a") as fh:
        yamls = subset_yamls(data_yaml, args.sizes, args.pool, Path(tmp))
        for arch, (sid, yaml_path) in itertools.product(archs, yamls.items()):
            if (arch.key, sid) in done:
                continue
            sub = replace(cfg, dataset=Dataset(cfg.dataset.names, sid, yaml_path=yaml_path), schedule={
                **cfg.schedule, "epochs": 0})  # fmt: skip
            t = time.perf_counter()
            r, _ = supernet_proxy(arch, sub, weights, Path(tmp) / "run", "cpu", 0)
            record = {"key": arch.key, "subset": sid, "map50_95": r.map50_95, "seconds": time.perf_counter() - t}
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            done[arch.key, sid] = record
            say(f"{arch.key} {sid}: {r.map50_95:.4f} ({record['seconds']:.1f} s)")
    ref = reference_means(PROXY_FIDELITY_RUNS)
    summary = summarize(list(done.values()), [a.key for a in archs], args.sizes, args.pool, ref)
    write_result(NAME, summary)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
