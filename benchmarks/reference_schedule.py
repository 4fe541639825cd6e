"""Would another training schedule make the fidelity reference's seeds agree? A pilot on chosen (architecture, seed)
pairs of ``proxy_fidelity``'s light set.

Each pair trains from scratch (16 epochs unless the variant says otherwise) through ``proxy_fidelity``'s own
training function, with light's schedule changed by the variant, one thread (as the reference's workers train),
and appends one JSON line to results/reference_schedule_runs.jsonl as it finishes. Compare a variant's seeds with
each other and with the reference's recorded values (``proxy_fidelity.json``, ``architectures[].reference``).
Variants:

- ``light``: light's schedule unchanged (reproduces the recorded reference run of the same seed);
- ``auto``: Ultralytics' own recipe for a training this short (``optimizer: auto``: AdamW at lr 0.002 * 5 / (4 + nc),
  bias warm-up from 0, momentum 0.9);
- ``nobias``: light's lr 0.003 without the bias warm-up (``warmup_bias_lr: 0``; Ultralytics' 0.1 is meant for SGD);
- ``light30``: light's schedule for 30 epochs instead of 16 (YOLO11n reaches mAP50-95 0.74 there, 0.62 at 16).

Run two commands side by side to use both cores:

    python -m benchmarks.reference_schedule VARIANT KEY:SEED [KEY:SEED ...]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.common import RESULTS, dataset_digest, diverse_architectures, host, parser, say
from benchmarks.proxy_fidelity import Bench, _preset, _train
from nas.measure import threads

VARIANTS = {"light": {}, "auto": {"optimizer": "auto"}, "nobias": {"warmup_bias_lr": 0.0}, "light30": {"epochs": 30}}
RUNS = RESULTS / "reference_schedule_runs.jsonl"
EPOCHS = 16


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("variant", choices=list(VARIANTS))
    ap.add_argument("pairs", nargs="+", metavar="KEY:SEED", help="an architecture key of the light set and a seed")
    ap.add_argument("--workdir", type=Path, default=Path("nas_runs/benchmarks/reference_schedule"))
    args = ap.parse_args()
    cfg = _preset("light")
    archs = {a.key: a for a in diverse_architectures(cfg.space, 12, 0)}
    pairs = []
    for pair in args.pairs:
        key, _, seed = pair.partition(":")
        if key not in archs or not seed.isdigit():
            ap.error(f"{pair}: expected KEY:SEED with KEY one of {', '.join(archs)}")
        pairs.append((key, int(seed)))
    os.environ[threads.ENV] = "1"
    bench = Bench("light", "cpu", EPOCHS, 0, args.workdir.resolve())
    schedule = {**cfg.schedule, "epochs": EPOCHS, **VARIANTS[args.variant]}
    where, data_digest = host(), dataset_digest(bench.cfg.dataset.data_yaml())
    for key, seed in pairs:
        workdir = bench.workdir / f"{args.variant}-{key}-s{seed}"
        workdir.mkdir(parents=True, exist_ok=True)
        out = _train(bench, archs[key], schedule, seed, workdir)
        record = {
            "variant": args.variant,
            "key": key,
            "seed": seed,
            "map50_95": out.map50_95,
            "seconds": round(out.seconds, 1),
            "threads": out.threads,
            "schedule": schedule,
            "host": where,
            "dataset_sha256": data_digest,
        }
        with RUNS.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        say(json.dumps(record))


if __name__ == "__main__":
    main()
