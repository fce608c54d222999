"""Recipes benchmark (issue 5): scratch, bottleneck, finetune and ``compare`` on real photos.

Run ``.venv/bin/python benchmarks/bench_recipes.py [naive] [fast] [cvd] [breeds]`` (all by
default; ``make bench`` runs everything). Prints Markdown and writes ``.bench/recipes.json``.

- ``naive``: the tutorial's convnet fed the naive Keras 3 way (``image_dataset_from_directory``
  decoding JPEGs every epoch + a chain of random layers for the preview augmentation), 2 epochs.
- ``fast``: the ``scratch`` recipe's pipeline on the same data, 2 epochs, with the preview and
  the tutorial augmentation (decoded once, one fused affine transform per batch).
- ``cvd``: ``littlevision compare`` of scratch (50 epochs), bottleneck and finetune on
  cats-vs-dogs: the scratch and finetune figures are those runs (each recipe runs once).
- ``breeds``: the same on cat-breeds (5 look-alike breeds, noisy labels), with top confusions.

The machine is shared: every figure comes with the process CPU time and the load average, and
the long runs should be started once, under ``nice``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench" / "recipes"
LV = [sys.executable, "-m", "littlevision.cli"]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], env: dict) -> dict:
    """Run a command; wall and CPU seconds, with the 1-minute load average before and after."""
    load0, cpu0, t0 = _load(), _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out = {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": _children_cpu() - cpu0,
        "load_before": load0,
        "load_after": _load(),
        "stdout": proc.stdout[-4000:],
    }
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return out


NAIVE = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from littlevision.training.scratch import tutorial_convnet
L = keras.layers
train = keras.utils.image_dataset_from_directory(sys.argv[1] + "/train", image_size=(150, 150),
                                                 batch_size=16, seed=0, verbose=False)
val = keras.utils.image_dataset_from_directory(sys.argv[1] + "/validation", image_size=(150, 150),
                                               batch_size=16, shuffle=False, verbose=False)
# The preview generator's augmentation as a chain of Keras 3 random layers, one after another.
chain = keras.Sequential([L.RandomRotation(40 / 360, fill_mode="nearest"),
                          L.RandomTranslation(0.2, 0.2, fill_mode="nearest"),
                          L.RandomShear(0.2, 0.2, fill_mode="nearest"),
                          L.RandomZoom(0.2, 0.2, fill_mode="nearest"),
                          L.RandomFlip("horizontal")])
if sys.argv[2] == "map":  # the augmentation in the input pipeline, as Keras' guide shows it
    train = train.map(lambda x, y: (chain(x, training=True), y))
    model = tutorial_convnet(2, 150, seed=0)
else:  # the augmentation as the model's first layers
    model = keras.Sequential([keras.Input((150, 150, 3)), chain,
                              *tutorial_convnet(2, 150, seed=0).layers])
model.compile(keras.optimizers.RMSprop(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
times = []
for epoch in range(2):
    t, c = time.perf_counter(), time.process_time()
    model.fit(train, validation_data=val, epochs=1, verbose=0)
    times.append((time.perf_counter() - t, time.process_time() - c))
print(json.dumps({"epoch_wall_s": [w for w, _ in times], "epoch_cpu_s": [c for _, c in times]}))
"""

FAST = r"""
import json, os, sys
from littlevision.training.run import TrainConfig, train
out = {}
for augment in ("preview", "tutorial"):
    b = train(sys.argv[1], sys.argv[2] + "/" + augment, TrainConfig(recipe="scratch"), epochs=2,
              augment=augment)
    h = json.load(open(sys.argv[2] + "/" + augment + "/history.json"))
    out[augment] = {"epoch_wall_s": h["seconds"], "epoch_cpu_s": h["cpu_seconds"],
                    "decode_s": b.card["timings"]["decode_s"]}
print(json.dumps(out))
"""


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def bench_naive(env: dict, results: dict) -> None:
    for where in ("model", "map"):
        r = run([sys.executable, "-c", NAIVE, str(DATASETS / "cats-vs-dogs"), where], env)
        results[f"naive_{where}"] = {
            **_last_json(r["stdout"]),
            "load_before": r["load_before"],
            "load_after": r["load_after"],
        }


def bench_fast(env: dict, results: dict) -> None:
    r = run([sys.executable, "-c", FAST, str(DATASETS / "cats-vs-dogs"), str(OUT / "fast")], env)
    results["fast"] = {
        **_last_json(r["stdout"]),
        "load_before": r["load_before"],
        "load_after": r["load_after"],
    }


def bench_compare(env: dict, results: dict, name: str, data: Path) -> None:
    folder = OUT / name
    r = run([*LV, "compare", str(data), "-o", str(folder), "--quiet"], env)
    table = json.loads((folder / "compare.json").read_text())
    rows = {}
    for row in table["rows"]:
        run_dir = Path(row["run"])
        card = json.loads((run_dir / "card.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        history_file = run_dir / "history.json"
        history = json.loads(history_file.read_text()) if history_file.is_file() else {}
        from littlevision.metrics import top_confusions

        rows[row["recipe"]] = {
            **{
                k: row[k]
                for k in (
                    "accuracy",
                    "log_loss",
                    "train_s",
                    "images_per_s",
                    "model_mb",
                    "image_size",
                    "backbone",
                )
            },
            "timings": card["timings"],
            "epochs_run": card["recipe_info"].get("epochs_run"),
            "best_epoch": card["recipe_info"].get("best_epoch"),
            "n_cached": card["recipe_info"].get("n_cached"),  # bottleneck: embeddings reused
            "epoch_wall_s": history.get("seconds"),
            "epoch_cpu_s": history.get("cpu_seconds"),
            "val_accuracy_curve": history.get("val_accuracy"),
            "top_confusions": top_confusions(metrics, 5),
            "n_train": card["data"]["n_train"],
            "n_val": card["data"]["n_val"],
        }
    results[name] = {
        "wall_s": r["wall_s"],
        "cpu_s": r["cpu_s"],
        "load_before": r["load_before"],
        "load_after": r["load_after"],
        "rows": rows,
        "markdown": (folder / "compare.md").read_text(),
    }


def _mean(xs, skip_first: bool = True) -> float:
    xs = list(xs or [])
    if skip_first and len(xs) > 1:
        xs = xs[1:]  # the first epoch includes tracing the graph
    return sum(xs) / len(xs) if xs else float("nan")


def report(results: dict) -> None:
    print(f"machine: {results['machine']}; load averages are 1-minute, before/after each step\n")
    if any(k in results for k in ("naive_model", "naive_map", "fast")):
        print(
            "| cats-vs-dogs, tutorial convnet, 2000 images/epoch | wall s/epoch | CPU s/epoch | load |"
        )
        print("|---|---|---|---|")
        for where, how in (
            ("model", "random layers in the model"),
            ("map", "random layers in dataset.map"),
        ):
            if f"naive_{where}" in results:
                n = results[f"naive_{where}"]
                print(
                    f"| naive Keras 3: decode every epoch + 5 random layers ({how}), preview "
                    f"augmentation | {n['epoch_wall_s'][-1]:.1f} | {n['epoch_cpu_s'][-1]:.1f} "
                    f"| {n['load_before']}/{n['load_after']} |"
                )
        for aug in ("preview", "tutorial"):
            if aug in results.get("fast", {}):
                f = results["fast"][aug]
                print(
                    f"| littlevision scratch ({aug} augmentation, decoded once, fused transform) "
                    f"| {f['epoch_wall_s'][-1]:.1f} | {f['epoch_cpu_s'][-1]:.1f} "
                    f"| {results['fast']['load_before']}/{results['fast']['load_after']} |"
                )
        print()
    for name, title in (("cvd", "cats-vs-dogs"), ("breeds", "cat-breeds")):
        if name not in results:
            continue
        c = results[name]
        print(
            f"### compare on {title}: {c['wall_s'] / 60:.1f} min wall, {c['cpu_s'] / 60:.1f} min "
            f"CPU, load {c['load_before']}/{c['load_after']}\n"
        )
        print(c["markdown"])
        for recipe, row in c["rows"].items():
            extra = ""
            if row.get("epoch_wall_s"):
                extra = (
                    f"; {row['epochs_run']} epochs, {_mean(row['epoch_wall_s']):.1f} s/epoch "
                    f"wall, {_mean(row['epoch_cpu_s']):.1f} s/epoch CPU"
                )
            if row.get("best_epoch") is not None:
                extra += f", best epoch {row['best_epoch']}"
            if row.get("n_cached"):
                extra += f"; {row['n_cached']} embeddings were already cached"
            conf = ", ".join(f"{t} as {p} x{n}" for t, p, n in row["top_confusions"][:3])
            print(
                f"- {recipe}: {100 * row['accuracy']:.2f}%, log-loss {row['log_loss']:.3f}, "
                f"{row['train_s']:.0f} s{extra}; top confusions: {conf or 'none'}"
            )
        print()


def main(argv: list[str]) -> None:
    steps = argv or ["naive", "fast", "cvd", "breeds"]
    if not (DATASETS / "cats-vs-dogs").is_dir():
        raise SystemExit(f"benchmark data not found at {DATASETS}")
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LITTLEVISION_CACHE": str(REPO / ".bench" / "cache")}
    path = OUT / "recipes.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["machine"] = (
        f"{os.cpu_count()} cores {platform.machine()}, "
        f"{platform.processor() or platform.system()}, shared with other work"
    )
    for step in steps:
        if step == "naive":
            bench_naive(env, results)
        elif step == "fast":
            bench_fast(env, results)
        elif step == "cvd":
            bench_compare(env, results, "cvd", DATASETS / "cats-vs-dogs")
        elif step == "breeds" and (DATASETS / "cat-breeds").is_dir():
            bench_compare(env, results, "breeds", DATASETS / "cat-breeds")
        path.write_text(json.dumps(results, indent=2, default=str))
    report(results)


if __name__ == "__main__":
    main(sys.argv[1:])
