"""Explain benchmark: Grad-CAM speed, report time, and whether the explanations are real.

Run with ``make bench BENCH=explain`` or ``.venv/bin/python benchmarks/bench_explain.py``.
Prints a Markdown table and writes ``.bench/explain.json``. Targets (issue 6): Grad-CAM
<= 1 s per image on 2 CPU cores (lite0); report for the 800-image cats-vs-dogs validation set
<= 60 s; Grad-CAM mass on the animal higher than on the background for most validation images;
randomising the head's weights changes the maps (Adebayo et al., 2018, model randomisation).

Uses the default (bottleneck, lite0) recipe trained on ../shared/datasets/cats-vs-dogs, reusing
``.bench/explain/cvd`` when it exists (``--retrain`` to train again).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"
os.environ.setdefault("LITTLEVISION_CACHE", str(OUT / "cache"))

# Boxes drawn by hand around the animal in a dozen validation photos with some background, as
# fractions of the image (x0, y0, x1, y1). Photos where the animal fills the frame are left out:
# there, any map would "hit" the animal.
BOXES = {
    "cats/cat.4001.jpg": (0.37, 0.15, 0.97, 0.92),
    "cats/cat.4002.jpg": (0.12, 0.18, 0.62, 0.62),
    "cats/cat.4003.jpg": (0.10, 0.08, 0.97, 0.92),
    "cats/cat.4004.jpg": (0.00, 0.30, 0.72, 1.00),
    "cats/cat.4005.jpg": (0.12, 0.00, 0.92, 0.85),
    "cats/cat.4008.jpg": (0.22, 0.10, 0.82, 0.90),
    "cats/cat.4011.jpg": (0.18, 0.22, 0.82, 0.78),
    "cats/cat.4012.jpg": (0.10, 0.12, 1.00, 0.80),
    "dogs/dog.4001.jpg": (0.28, 0.10, 0.75, 0.92),
    "dogs/dog.4004.jpg": (0.12, 0.05, 0.90, 0.97),
    "dogs/dog.4005.jpg": (0.10, 0.02, 0.90, 0.92),
    "dogs/dog.4009.jpg": (0.12, 0.10, 0.95, 0.95),
    "dogs/dog.4010.jpg": (0.10, 0.10, 0.75, 1.00),
}


def timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps (NaN when one is constant, e.g. all zero)."""
    from scipy.stats import spearmanr

    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def centre_prior(size: int, sigma: float = 0.25) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] + 0.5
    c = size / 2
    return np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * (sigma * size) ** 2))


def box_mask(box, size: int) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v * size)) for v in box)
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def gradcam_speed(explainer, val_files) -> dict:
    from littlevision.data.decode import load_image

    images = [load_image(p) for p in val_files[:32]]
    _, t_first, _ = timed(explainer.gradcam, images[:1])  # traces the tf.function
    best = min((timed(explainer.gradcam, images) for _ in range(3)), key=lambda r: r[1])
    singles = [timed(explainer.gradcam_overlay, im)[1:] for im in images[:16]]
    return {
        "first_call_s": t_first,
        "batch32_s_per_image": best[1] / len(images),
        "batch32_cpu_s_per_image": best[2] / len(images),
        "overlay_png_s_per_image": float(np.median([s[0] for s in singles])),
        "overlay_png_cpu_s_per_image": float(np.median([s[1] for s in singles])),
    }


def explanations_are_real(explainer, cvd: Path) -> dict:
    """Centre prior and hand-drawn boxes (mass on the animal), then model randomisation."""
    from littlevision.data.decode import decode_many

    val = cvd / "validation"
    files = sorted((val / "cats").iterdir())[:100] + sorted((val / "dogs").iterdir())[:100]
    y = np.array([0] * 100 + [1] * 100)
    dec = decode_many(files, explainer.image_size)
    images, y = dec.images, y[dec.ok_indices]
    res = explainer.gradcam(images, y)  # evidence for the animal actually in the photo
    maps = res.heatmaps
    size = maps.shape[1]
    prior = centre_prior(size)
    corr = np.array(
        [np.corrcoef(m.ravel(), prior.ravel())[0, 1] if m.std() > 0 else np.nan for m in maps]
    )
    centre = box_mask((0.25, 0.25, 0.75, 0.75), size)
    mass = maps.reshape(len(maps), -1).sum(1)
    centre_mass = np.where(mass > 0, maps[:, centre].sum(1) / np.maximum(mass, 1e-12), np.nan)

    box_files = [val / rel for rel in BOXES]
    box_dec = decode_many(box_files, explainer.image_size)
    box_y = np.array([0 if rel.startswith("cats") else 1 for rel in BOXES])[box_dec.ok_indices]
    box_maps = explainer.gradcam(box_dec.images, box_y).heatmaps
    rows = []
    for m, rel in zip(box_maps, np.array(list(BOXES))[box_dec.ok_indices], strict=True):
        mask = box_mask(BOXES[rel], size)
        frac = float(m[mask].sum() / max(m.sum(), 1e-12))
        peak = np.unravel_index(np.argmax(m), m.shape)
        rows.append(
            {
                "file": str(rel),
                "box_area": float(mask.mean()),
                "mass_in_box": frac,
                "peak_in_box": bool(mask[peak]),
            }
        )

    # Model randomisation (Adebayo et al. 2018): the same images and classes, random head.
    raw = explainer.gradcam(images, y, upsample=False).heatmaps
    head = explainer.model.get_layer("classifier")
    saved = head.get_weights()
    rng = np.random.default_rng(0)
    try:
        kernel, bias = saved
        head.set_weights(
            [rng.normal(0, kernel.std(), kernel.shape).astype(np.float32), np.zeros_like(bias)]
        )
        rand = explainer.gradcam(images, y, upsample=False).heatmaps
    finally:
        head.set_weights(saved)
    rho = np.array([spearman(a, b) for a, b in zip(raw, rand, strict=True)])
    again = explainer.gradcam(images[:8], y[:8], upsample=False).heatmaps
    return {
        "n_images": int(len(maps)),
        "val_accuracy_of_these": float((res.probabilities.argmax(1) == y).mean()),
        "centre_prior_corr_median": float(np.nanmedian(corr)),
        "centre_prior_corr_positive_frac": float(np.nanmean(corr > 0)),
        "centre_quarter_mass_median": float(np.nanmedian(centre_mass)),
        "centre_quarter_mass_above_area_frac": float(np.nanmean(centre_mass > 0.25)),
        "empty_maps": int(np.sum(mass == 0)),
        "boxes": rows,
        "boxes_mass_above_area_frac": float(
            np.mean([r["mass_in_box"] > r["box_area"] for r in rows])
        ),
        "boxes_mass_median": float(np.median([r["mass_in_box"] for r in rows])),
        "boxes_area_median": float(np.median([r["box_area"] for r in rows])),
        "boxes_pointing_game": float(np.mean([r["peak_in_box"] for r in rows])),
        "randomised_head_spearman_median": float(np.nanmedian(rho)),
        "randomised_head_spearman_mean_abs": float(np.nanmean(np.abs(rho))),
        "randomised_head_spearman_n": int(np.sum(~np.isnan(rho))),
        "restored_weights_same_maps": bool(np.allclose(again, raw[:8], atol=1e-5)),
    }


def report_time(run_dir: Path) -> dict:
    """``littlevision report`` in a fresh process (TensorFlow import included), as a user runs it."""
    out = OUT / "explain" / "report.html"
    cmd = [
        sys.executable,
        "-m",
        "littlevision.cli",
        "report",
        str(run_dir),
        "-o",
        str(out),
        "--quiet",
    ]
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("report failed")
    html = out.read_text(encoding="utf-8")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "size_mb": out.stat().st_size / 1e6,
        "n_images_embedded": html.count("<img "),
        "path": str(out),
    }


def report_in_process(bundle) -> dict:
    """``write_report`` as ``train`` calls it (TensorFlow and the model already loaded)."""
    from littlevision.explain.report import build_context

    ctx, wall, cpu = timed(build_context, bundle)
    steps = {
        k: f"{v:.1f} s (CPU {ctx['report_cpu_timings'][k]:.1f} s)"
        for k, v in ctx["report_timings"].items()
        if v >= 0.5
    }
    return {"wall_s": wall, "cpu_s": cpu, "steps": steps, "val_n": ctx["val_n"]}


def main(argv: list[str]) -> None:
    from littlevision.bundle import Bundle
    from littlevision.explain._gradcam import Explainer, get_explainer
    from littlevision.training.run import TrainConfig, train

    cvd = DATASETS / "cats-vs-dogs"
    if not cvd.is_dir():
        raise SystemExit(f"benchmark data not found at {cvd}")
    run_dir = OUT / "explain" / "cvd"
    results: dict = {"machine": f"{os.cpu_count()} cores", "load_avg_start": os.getloadavg()}
    if "--retrain" in argv or not (run_dir / "model.keras").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        _, results["train_s"], _ = timed(train, cvd, run_dir, TrainConfig())
    bundle = Bundle.load(run_dir)
    results["val_accuracy"] = bundle.metrics["accuracy"]
    results["report_cli"] = report_time(run_dir)
    explainer, t_build, _ = timed(Explainer, bundle)
    results["explainer_build_s"] = t_build
    val_files = (
        sorted((cvd / "validation" / "cats").iterdir())[:16]
        + sorted((cvd / "validation" / "dogs").iterdir())[:16]
    )
    results["gradcam"] = gradcam_speed(explainer, val_files)
    get_explainer(bundle)  # warm, as after training
    results["report_in_process"] = report_in_process(bundle)
    results["sanity"] = explanations_are_real(explainer, cvd)
    results["load_avg_end"] = os.getloadavg()
    (OUT / "explain.json").write_text(json.dumps(results, indent=2, default=str))

    g, s, r, rp = (
        results["gradcam"],
        results["sanity"],
        results["report_cli"],
        results["report_in_process"],
    )
    print(
        f"load average {results['load_avg_start'][0]:.1f} -> {results['load_avg_end'][0]:.1f} "
        f"on {results['machine']}\n"
    )
    print("| measure | value | target |\n|---|---|---|")
    print(
        f"| Grad-CAM, batch of 32 (lite0, 224 px) | {g['batch32_s_per_image'] * 1000:.0f} ms/image "
        f"(CPU {g['batch32_cpu_s_per_image'] * 1000:.0f} ms) | <= 1 s |"
    )
    print(
        f"| gradcam_overlay, one image incl. PNG | {g['overlay_png_s_per_image'] * 1000:.0f} ms "
        f"(CPU {g['overlay_png_cpu_s_per_image'] * 1000:.0f} ms) | <= 1 s |"
    )
    print(
        f"| Explainer build (load model.keras) + first call | {results['explainer_build_s']:.1f} s "
        f"+ {g['first_call_s']:.1f} s | once per model |"
    )
    print(
        f"| `littlevision report` ({rp['val_n']} validation images, fresh process) | "
        f"{r['wall_s']:.1f} s (CPU {r['cpu_s']:.1f} s), {r['size_mb']:.1f} MB | <= 60 s |"
    )
    print(
        f"| write_report in process (as after train) | {rp['wall_s']:.1f} s (CPU {rp['cpu_s']:.1f} s) | <= 60 s |"
    )
    print(
        f"| Grad-CAM vs centre prior: median correlation ({s['n_images']} images) | "
        f"{s['centre_prior_corr_median']:.2f}, > 0 for {100 * s['centre_prior_corr_positive_frac']:.0f}% | > 0 for most |"
    )
    print(
        f"| mass in the central quarter of the image | median {100 * s['centre_quarter_mass_median']:.0f}%, "
        f"> 25% for {100 * s['centre_quarter_mass_above_area_frac']:.0f}% | > area for most |"
    )
    print(
        f"| mass inside hand-drawn animal boxes ({len(s['boxes'])} photos) | median "
        f"{100 * s['boxes_mass_median']:.0f}% (box area {100 * s['boxes_area_median']:.0f}%), "
        f"> area for {100 * s['boxes_mass_above_area_frac']:.0f}% | > area for most |"
    )
    print(f"| peak inside the box (pointing game) | {100 * s['boxes_pointing_game']:.0f}% | |")
    print(
        f"| randomised head vs trained: Spearman rho | median {s['randomised_head_spearman_median']:.2f}, "
        f"mean abs {s['randomised_head_spearman_mean_abs']:.2f} | far from 1 |"
    )
    for step, text in rp["steps"].items():
        print(f"| report step: {step} | {text} | |")


if __name__ == "__main__":
    main(sys.argv[1:])
