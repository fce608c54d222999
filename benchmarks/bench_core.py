"""Core benchmark: train / predict on the shared real datasets, cold and warm embedding cache.

Run with ``make bench`` (all benchmarks) or ``.venv/bin/python benchmarks/bench_core.py``.
Prints a Markdown table and writes ``.bench/core.json``. Targets (issue 3): cats-vs-dogs default
recipe >= 98.5% validation accuracy, <= 60 s cold, <= 10 s warm; predict >= 150 img/s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"
LV = [sys.executable, "-m", "littlevision.cli"]


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return elapsed, proc.stdout


def throughput(env: dict) -> dict:
    """Decode and embedding img/s in-process, on 256 cats-vs-dogs training images."""
    code = r"""
import json, time, sys
from pathlib import Path
from littlevision.data.decode import decode_many
from littlevision.features import Embedder
files = sorted(Path(sys.argv[1]).rglob('*.jpg'))[:256]
emb = Embedder('lite0', use_cache=False)
emb.embed_array(decode_many(files[:8], 224).images)  # warm-up, builds the session
t = time.perf_counter(); d = decode_many(files, 224); t_dec = time.perf_counter() - t
t = time.perf_counter()
for i in range(0, len(files), 32):
    emb.embed_array(d.images[i:i + 32])
t_emb = time.perf_counter() - t
t = time.perf_counter(); emb.embed_paths(files); t_stream = time.perf_counter() - t
print(json.dumps({'decode_img_s': len(files) / t_dec, 'embed_img_s': len(files) / t_emb,
                  'decode_and_embed_img_s': len(files) / t_stream}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(DATASETS / "cats-vs-dogs" / "train")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    cvd = DATASETS / "cats-vs-dogs"
    breeds = DATASETS / "cat-breeds"
    if not cvd.is_dir():
        raise SystemExit(f"benchmark data not found at {cvd}")
    OUT.mkdir(exist_ok=True)
    cache = OUT / "cache"
    env = {**os.environ, "LITTLEVISION_CACHE": str(cache)}
    results: dict = {"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0]}

    # Converted weights and the backbone's ONNX are made once per install: do that first.
    run([*LV, "info", "--help"], env)
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    run_dir = OUT / "cvd"
    shutil.rmtree(run_dir, ignore_errors=True)
    t_first, _ = run([*LV, "train", str(cvd), "-o", str(run_dir), "--quiet", "--no-report"], env)
    results["first_ever_s"] = t_first  # includes weight conversion and backbone export if needed
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    t_cold, _ = run([*LV, "train", str(cvd), "-o", str(run_dir), "--quiet", "--no-report"], env)
    t_warm, _ = run([*LV, "train", str(cvd), "-o", str(run_dir), "--quiet", "--no-report"], env)
    t_report, _ = run([*LV, "train", str(cvd), "-o", str(run_dir), "--quiet"], env)
    card = json.loads((run_dir / "card.json").read_text())
    results["cats_vs_dogs"] = {
        "val_accuracy": card["metrics"]["accuracy"],
        "val_log_loss": card["metrics"]["log_loss"],
        "n_train": card["data"]["n_train"],
        "n_val": card["data"]["n_val"],
        "cold_s": t_cold,
        "warm_s": t_warm,
        "warm_with_report_s": t_report,
        "timings": card["timings"],
        "C": card["recipe_info"].get("C"),
    }
    t_pred, stdout = run(
        [
            *LV,
            "predict",
            str(run_dir),
            str(cvd / "validation"),
            "-o",
            str(OUT / "pred.csv"),
            "--quiet",
        ],
        env,
    )
    n_pred = sum(1 for _ in open(OUT / "pred.csv")) - 1
    results["predict"] = {
        "n": n_pred,
        "wall_s": t_pred,
        "wall_img_s": n_pred / t_pred,
        "reported": stdout.strip(),
    }
    t_all, _ = run(
        [*LV, "predict", str(run_dir), str(cvd), "-o", str(OUT / "pred-all.csv"), "--quiet"], env
    )
    n_all = sum(1 for _ in open(OUT / "pred-all.csv")) - 1
    results["predict_all"] = {"n": n_all, "wall_s": t_all, "wall_img_s": n_all / t_all}
    results["throughput"] = throughput(env)
    if breeds.is_dir():
        b_dir = OUT / "breeds"
        shutil.rmtree(b_dir, ignore_errors=True)
        t_b, _ = run([*LV, "train", str(breeds), "-o", str(b_dir), "--quiet", "--no-report"], env)
        bc = json.loads((b_dir / "card.json").read_text())
        results["cat_breeds"] = {
            "wall_s": t_b,
            "val_accuracy": bc["metrics"]["accuracy"],
            "n_train": bc["data"]["n_train"],
            "n_val": bc["data"]["n_val"],
            "skipped": bc["data"]["skipped"],
            "load_report": bc["data"].get("load_report"),
        }
    (OUT / "core.json").write_text(json.dumps(results, indent=2, default=str))
    c = results["cats_vs_dogs"]
    print("| measure | value | target |\n|---|---|---|")
    print(f"| cats-vs-dogs validation accuracy | {100 * c['val_accuracy']:.2f}% | >= 98.5% |")
    print(f"| train, cold embedding cache (wall) | {c['cold_s']:.1f} s | <= 60 s |")
    print(f"| train, warm cache (wall) | {c['warm_s']:.1f} s | <= 10 s |")
    print(f"| train, warm cache + report.html (wall) | {c['warm_with_report_s']:.1f} s | |")
    print(f"| first run ever (weights converted) | {results['first_ever_s']:.1f} s | |")
    print(f"| decode 224 px (2 threads) | {results['throughput']['decode_img_s']:.0f} img/s | |")
    print(
        f"| embed lite0 (ONNX Runtime, batch 32) | {results['throughput']['embed_img_s']:.0f} img/s | |"
    )
    print(
        f"| decode + embed files, one worker per core (`Embedder.embed_paths`, no cache) | "
        f"{results['throughput']['decode_and_embed_img_s']:.0f} img/s | |"
    )
    p = results["predict"]
    print(
        f"| predict {p['n']} images (wall, incl. start-up) | {p['wall_img_s']:.0f} img/s | >= 150 img/s |"
    )
    if "predict_all" in results:
        p = results["predict_all"]
        print(
            f"| predict the whole folder, {p['n']} images (wall, incl. start-up) | "
            f"{p['wall_img_s']:.0f} img/s | >= 150 img/s |"
        )
    if "cat_breeds" in results:
        b = results["cat_breeds"]
        print(
            f"| cat-breeds via CSV: accuracy / wall | {100 * b['val_accuracy']:.1f}% / {b['wall_s']:.1f} s | trains |"
        )
        print(f"| cat-breeds skipped files | {len(b['skipped'])} | reported |")


if __name__ == "__main__":
    main()
