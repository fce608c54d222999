"""Runtimes side by side: ONNX Runtime fp32/int8 against OpenVINO fp32/bf16/int8, in one run.

Every variant runs the same cats-vs-dogs classifier (a bundle's ``model.onnx``: EfficientNet-Lite0
+ linear head) on the same images. The machine is shared, so the variants are interleaved round
by round and the median of the rounds is kept; ``uptime``'s load is recorded with every row.

    .venv/bin/python benchmarks/bench_runtimes.py [--run RUN] [--rounds 3] [--images 96]

Needs ``pip install openvino nncf`` for the OpenVINO rows (skipped when absent). Writes
``.bench/runtimes.json`` and prints a Markdown table (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"


def load() -> str:
    return os.getloadavg().__repr__() if hasattr(os, "getloadavg") else "?"


def load1() -> float:
    return os.getloadavg()[0]


def ensure_bundle(run: Path, cvd: Path) -> Path:
    if (run / "model.onnx").is_file():
        return run
    subprocess.run(
        [sys.executable, "-m", "littlevision.cli", "train", str(cvd), "-o", str(run), "--quiet"]
        + ["--no-report", "--precision", "fp32"],
        check=True,
    )
    return run


class Variant:
    """One runtime + precision: ``run(images, threads)`` -> probabilities."""

    def __init__(self, name: str, make):
        self.name = name
        self._make = make  # threads -> callable(images) -> probs
        self._cache: dict[int, object] = {}

    def fn(self, threads: int):
        if threads not in self._cache:
            self._cache[threads] = self._make(threads)
        return self._cache[threads]


def ort_variant(name: str, path: Path) -> Variant:
    from littlevision.inference import make_session

    def make(threads: int):
        sess = make_session(path, threads)
        inp = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {inp: x})[0]

    return Variant(name, make)


def ov_variant(name: str, model_or_path, precision: str) -> Variant:
    import openvino as ov

    core = ov.Core()

    def make(threads: int):
        compiled = core.compile_model(
            model_or_path,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        local = threading.local()

        def run(x: np.ndarray) -> np.ndarray:
            req = getattr(local, "req", None)
            if req is None:
                req = local.req = compiled.create_infer_request()
            return req.infer({0: x})[0].copy()

        return run

    return Variant(name, make)


def timed(fn, images: np.ndarray, batch: int) -> float:
    """img/s of ``fn`` over ``images`` in batches of ``batch``."""
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        fn(images[i : i + batch])
    return len(images) / (time.perf_counter() - t0)


def timed_decode(variant: Variant, paths: list[Path], size: int) -> float:
    """img/s decoding files and predicting, one worker per core, one-thread model each
    (the product's streaming path, ``OnnxModel.map_paths``)."""
    from littlevision.data.decode import map_decoded

    fn = variant.fn(1)
    t0 = time.perf_counter()
    n = 0
    for decoded, _ in map_decoded(paths, size, fn, 8, workers=2):
        n += len(decoded.ok_indices)
    return n / (time.perf_counter() - t0)


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1)).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=OUT / "runtimes" / "cvd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=96, help="images per timing")
    ap.add_argument("--decode-images", type=int, default=400)
    args = ap.parse_args()

    from littlevision.bundle import Bundle
    from littlevision.data.decode import decode_many
    from littlevision.models.quantize import CALIBRATION_IMAGES, quantize_static_int8

    cvd = DATASETS / "cats-vs-dogs"
    bundle = Bundle.load(ensure_bundle(args.run, cvd))
    size = bundle.image_size
    labels = bundle.labels
    work = OUT / "runtimes"
    work.mkdir(parents=True, exist_ok=True)

    train_files = sorted((cvd / "train").rglob("*.jpg"))
    rng = np.random.default_rng(0)
    calib_files = [train_files[i] for i in rng.choice(len(train_files), CALIBRATION_IMAGES, False)]
    calib = decode_many(calib_files, size).images
    val_files, val_y = [], []
    for k, label in enumerate(labels):
        files = sorted((cvd / "validation" / label).glob("*.jpg"))
        val_files += files
        val_y += [k] * len(files)
    val = decode_many(val_files, size).images
    val_y = np.array(val_y)

    t0 = time.perf_counter()
    int8_path = quantize_static_int8(bundle.onnx_path, work / "model.int8.onnx", calib)
    ort_quant_s = time.perf_counter() - t0
    variants = [ort_variant("ORT fp32", bundle.onnx_path), ort_variant("ORT int8", int8_path)]
    notes = {"ORT int8": f"quantised in {ort_quant_s:.1f} s"}
    try:
        import openvino as ov

        variants += [
            ov_variant("OpenVINO fp32", str(bundle.onnx_path), "f32"),
            ov_variant("OpenVINO bf16", str(bundle.onnx_path), "bf16"),
        ]
        try:
            import nncf

            t0 = time.perf_counter()
            ov_model = ov.Core().read_model(str(bundle.onnx_path))
            q = nncf.quantize(
                ov_model,
                nncf.Dataset([calib[i : i + 1] for i in range(len(calib))]),
                subset_size=len(calib),
            )
            notes["OpenVINO int8"] = f"NNCF quantised in {time.perf_counter() - t0:.1f} s"
            variants.append(ov_variant("OpenVINO int8", q, "f32"))
        except ImportError:
            print("nncf not installed: no OpenVINO int8 row", file=sys.stderr)
    except ImportError:
        print("openvino not installed: ORT rows only", file=sys.stderr)

    # Accuracy against ORT fp32 on all validation images (2 threads, batch 32).
    results: dict = {"load_start": load(), "n_val": len(val), "notes": notes, "rows": {}}
    probs = {
        v.name: np.concatenate([v.fn(2)(val[i : i + 32]) for i in range(0, len(val), 32)])
        for v in variants
    }
    ref = probs["ORT fp32"]
    for v in variants:
        p = probs[v.name]
        results["rows"][v.name] = {
            "agreement": float((p.argmax(1) == ref.argmax(1)).mean()),
            "changed": int((p.argmax(1) != ref.argmax(1)).sum()),
            "accuracy": float((p.argmax(1) == val_y).mean()),
            "log_loss": log_loss(p, val_y),
            "max_abs_diff": float(np.abs(p - ref).max()),
            "speed": {},
        }

    # Speed: rounds of every (threads, batch) over every variant, interleaved.
    bench = val[: args.images]
    configs = [(t, b) for t in (1, 2) for b in (1, 4, 32)]
    for v in variants:
        for t in (1, 2):
            v.fn(t)(bench[:4])  # warm-up
    samples: dict = {}
    loads: list[float] = []
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for t, b in configs:
            for v in order:
                samples.setdefault((v.name, t, b), []).append(timed(v.fn(t), bench, b))
                loads.append(load1())
        for v in order:
            samples.setdefault((v.name, "decode"), []).append(
                timed_decode(v, val_files[: args.decode_images], size)
            )
            loads.append(load1())
        print(f"round {r + 1}/{args.rounds} done, load {load()}", file=sys.stderr)
        summarise(results, samples, loads, r + 1)  # a run cut short still leaves its rounds
    print_table(results, configs)


def summarise(results: dict, samples: dict, loads: list[float], rounds: int) -> None:
    """Medians so far into ``results`` and ``.bench/runtimes.json``."""
    for key, vals in samples.items():
        name, *rest = key
        label = "decode+predict 2 workers b8" if rest == ["decode"] else f"t{rest[0]} b{rest[1]}"
        results["rows"][name]["speed"][label] = statistics.median(vals)
    results["rounds_done"] = rounds
    results["load_during"] = {
        "min": min(loads),
        "median": statistics.median(loads),
        "max": max(loads),
    }
    results["load_end"] = load()
    (OUT / "runtimes.json").write_text(json.dumps(results, indent=2))


def print_table(results: dict, configs) -> None:
    cols = [f"t{t} b{b}" for t, b in configs] + ["decode+predict 2 workers b8"]
    during = results["load_during"]
    print(
        f"load (1 min) during the run: min {during['min']:.1f}, "
        f"median {during['median']:.1f}, max {during['max']:.1f}"
    )
    print("| runtime | " + " | ".join(cols) + " | agree vs fp32 | accuracy | log-loss | max Δp |")
    print("|---" * (len(cols) + 5) + "|")
    base = results["rows"]["ORT fp32"]["speed"]
    for name, row in results["rows"].items():
        cells = [f"{row['speed'][c]:.0f} ({row['speed'][c] / base[c]:.2f}x)" for c in cols]
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {row['agreement']:.2%} ({row['changed']} changed) | {row['accuracy']:.2%} "
            f"| {row['log_loss']:.4f} | {row['max_abs_diff']:.3f} |"
        )


if __name__ == "__main__":
    main()
