"""``littlevision predict`` with the exact model against the fast one, alternating, in one run.

    .venv/bin/python benchmarks/bench_precision.py RUN [--rounds 2] [--data FOLDER]

RUN must hold a ``model.int8.onnx`` (a bundle trained with the default ``--precision auto``
whose int8 model passed its gate, or one ``bench_runtimes.py`` made). Each round runs
``predict --precision fp32`` then ``predict --precision int8`` (the order flips every round) on
the whole cats-vs-dogs folder (2800 images), start-up included, and records ``uptime``'s load
with each figure; then it compares the two CSVs: top-1 agreement and accuracy against the
folder labels. Prints a Markdown table and writes ``.bench/precision.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"
LV = [sys.executable, "-m", "littlevision.cli"]


def predict(run: Path, data: Path, precision: str, out: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    subprocess.run(
        [*LV, "predict", str(run), str(data), "-o", str(out), "--precision", precision, "-q"],
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - t0
    n = sum(1 for _ in open(out, encoding="utf-8")) - 1
    return wall, n


def rows(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8") as f:
        return {r["path"]: r["label"] for r in csv.DictReader(f)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DATASETS / "cats-vs-dogs")
    args = ap.parse_args()
    if not (args.run / "model.int8.onnx").is_file():
        raise SystemExit(f"{args.run} has no model.int8.onnx")
    OUT.mkdir(exist_ok=True)
    samples: dict[str, list] = {"fp32": [], "int8": []}
    for r in range(args.rounds):
        for precision in ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32"):
            load = os.getloadavg()[0]
            wall, n = predict(args.run, args.data, precision, OUT / f"pred-{precision}.csv")
            samples[precision].append({"wall_s": wall, "n": n, "img_s": n / wall, "load": load})
            print(f"{precision}: {n / wall:.0f} img/s (load {load:.1f})", file=sys.stderr)
    a, b = rows(OUT / "pred-fp32.csv"), rows(OUT / "pred-int8.csv")
    truth = {p: Path(p).parent.name for p in a}
    agree = sum(a[p] == b[p] for p in a) / len(a)
    acc = {k: sum(v[p] == truth[p] for p in v) / len(v) for k, v in (("fp32", a), ("int8", b))}
    med = {k: statistics.median(s["img_s"] for s in v) for k, v in samples.items()}
    ratios = [
        i["img_s"] / f["img_s"] for f, i in zip(samples["fp32"], samples["int8"], strict=True)
    ]
    result = {
        "samples": samples,
        "agreement": agree,
        "changed": sum(a[p] != b[p] for p in a),
        "accuracy": acc,
        "median_img_s": med,
        "ratio_int8_over_fp32_per_round": ratios,
    }
    (OUT / "precision.json").write_text(json.dumps(result, indent=2))
    print("| predict, 2 cores, start-up included | img/s (median) | load during | accuracy |")
    print("|---|---:|---|---:|")
    for k in ("fp32", "int8"):
        loads = ", ".join(f"{s['load']:.1f}" for s in samples[k])
        print(f"| `--precision {k}` | {med[k]:.0f} | {loads} | {100 * acc[k]:.2f}% |")
    print(
        f"\nint8 / fp32 per round: {', '.join(f'{x:.2f}x' for x in ratios)}; top-1 agreement "
        f"{100 * agree:.2f}% ({result['changed']} of {len(a)} changed)"
    )


if __name__ == "__main__":
    main()
