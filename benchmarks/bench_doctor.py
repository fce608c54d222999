"""Data doctor benchmark (issue 4): planted problems, speed against cleanvision, cat-breeds.

Run with ``make bench BENCH=doctor`` or ``.venv/bin/python benchmarks/bench_doctor.py [parts]``
where parts are any of ``planted speed breeds labels`` (default: all four). Prints Markdown tables and
writes ``.bench/doctor-PRECISION.json`` (``--precision fp32|int8``: the doctor's embeddings).

(a) ``planted``: copies a slice of cats-vs-dogs (tutorial layout) to a temp folder, plants
    several known problems of every check into it (each from a real photo), plus valid but
    unusual images (CMYK, grayscale, EXIF-rotated, PNG named .jpg), runs ``doctor`` and reports
    recall and precision per check. A second, CSV-labelled slice carries the listing and
    balance problems.
(b) ``speed``: ``doctor`` on the full cats-vs-dogs (2800 images) with a cold embedding cache
    (the backbone's ONNX export, a once-per-install cost, is done and timed first), then warm;
    and cleanvision on the same folder, run from its own virtual environment (cleanvision is
    Apache-2.0 since 0.3.7, but not a dependency of littlevision) -- ``--cleanvision-python`` or
    ``$CLEANVISION_PYTHON``, default ``.dev/cleanvision-env/bin/python`` -- listing which issue
    types each tool finds.
(c) ``breeds``: ``doctor`` on cat-breeds through its CSV, cold cache: every real problem the
    dataset's README lists must be reported (checked against an independent scan), and time.
(d) ``labels``: the doctor's confident learning against cleanlab's ``find_label_issues`` (when
    cleanlab is installed) on the same out-of-fold probabilities: the planted swaps of (a)
    under three seeds, and 40 random swaps in all of cats-vs-dogs under three seeds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from littlevision._system import available_cores

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"
LV = [sys.executable, "-m", "littlevision.cli"]

# Which cleanvision issue type corresponds to which doctor check.
CLEANVISION_TO_DOCTOR = {
    "exact_duplicates": "exact_duplicates",
    "near_duplicates": "near_duplicates",
    "dark": "dark",
    "light": "overexposed",
    "blurry": "blurry",
    "low_information": "blank",
    "odd_aspect_ratio": "extreme_aspect_ratio",
    "odd_size": "tiny",
    "grayscale": "grayscale",
}

_CLEANVISION_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
from cleanvision import Imagelab
lab = Imagelab(data_path=sys.argv[1])
lab.find_issues()
elapsed = time.perf_counter() - t0
summary = {row["issue_type"]: int(row["num_images"]) for _, row in lab.issue_summary.iterrows()}
print("CLEANVISION_JSON " + json.dumps({"seconds": elapsed, "issues": summary,
                                        "n_images": int(len(lab.issues))}))
"""


# -- helpers --------------------------------------------------------------------------------------


def run_timed(cmd: list[str], env: dict, ok_codes=(0,)) -> tuple[float, float, str]:
    """(wall seconds, child CPU seconds, stdout) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok_codes:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def doctor_json(data: Path, env: dict, *extra: str) -> tuple[dict, float, float]:
    """``doctor --json`` on ``data``; the embedding precision comes from ``$BENCH_PRECISION``
    (``--precision`` of this script), so every phase measures the same backbone."""
    extra = (*extra, "--precision", env.get("BENCH_PRECISION", "fp32"))
    with tempfile.TemporaryDirectory(prefix="lv-doctor-json-") as tmp:
        out = Path(tmp) / "report.json"
        wall, cpu, _ = run_timed(
            [*LV, "doctor", str(data), "-q", "--json-file", str(out), *extra], env
        )
        return json.loads(out.read_text()), wall, cpu


def warm_page_cache(folder: Path) -> None:
    """Read every file once, so neither tool pays for the disk and the order does not matter."""
    for p in folder.rglob("*"):
        if p.is_file():
            p.read_bytes()


def fresh_env(cache: Path) -> dict:
    return {**os.environ, "LITTLEVISION_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}


def prepare_backbone(env: dict) -> float:
    """Export the backbone's ONNX into the cache (once per install); seconds it took."""
    code = (
        "import time; t=time.perf_counter(); from littlevision.features import Embedder; "
        "Embedder('lite0').session; print(time.perf_counter()-t)"
    )
    _, _, out = run_timed([sys.executable, "-c", code], env)
    return float(out.strip().splitlines()[-1])


def machine() -> str:
    cores = available_cores()
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cores} cores {cpu}".strip()


# -- (a) planted problems -------------------------------------------------------------------------


def _jpeg(img: Image.Image, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kw.setdefault("quality", 90)
    img.save(path, "JPEG", **kw)


def _png_claiming(img: Image.Image, width: int, height: int) -> bytes:
    import io
    import struct
    import zlib

    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _off_topic_photos() -> list[Image.Image]:
    """Real photos that are not pets, from the sample data numpy's ecosystem ships."""
    import matplotlib
    from sklearn.datasets import load_digits, load_sample_image

    photos = [Image.fromarray(load_sample_image(n)) for n in ("china.jpg", "flower.jpg")]
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "logo2.png", "Minduka_Present_Blue_Pack.png"):
        if (sample / name).is_file():
            photos.append(Image.open(sample / name).convert("RGB"))
    digit = (load_digits().images[7] * 16).clip(0, 255).astype(np.uint8)
    photos.append(
        Image.fromarray(digit).resize((256, 256), Image.Resampling.NEAREST).convert("RGB")
    )
    return photos


def plant(
    root: Path, per_class_train: int = 150, per_class_val: int = 50, seed: int = 0
) -> dict[str, list[str]]:
    """Copy a slice of cats-vs-dogs to ``root`` and plant problems; returns what was planted."""
    cvd = DATASETS / "cats-vs-dogs"
    for subset, n in (("train", per_class_train), ("validation", per_class_val)):
        for cls in ("cats", "dogs"):
            files = sorted((cvd / subset / cls).iterdir(), key=lambda p: p.name)[:n]
            (root / subset / cls).mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy2(f, root / subset / cls / f.name)
    rng = np.random.default_rng(seed)
    pool = {cls: sorted((root / "train" / cls).glob("*.jpg")) for cls in ("cats", "dogs")}
    for cls in pool:
        rng.shuffle(pool[cls])
    taken: list[Path] = []

    def take(cls: str | None = None) -> Path:
        c = cls or ("cats" if len(taken) % 2 == 0 else "dogs")
        f = pool[c].pop()
        taken.append(f)
        return f

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    def img(p: Path) -> Image.Image:
        with Image.open(p) as im:
            return im.convert("RGB")

    truth: dict[str, list[str]] = {
        k: []
        for k in (
            "unreadable",
            "truncated",
            "not_an_image",
            "decompression_bomb",
            "exact_duplicates",
            "leakage",
            "conflicting_labels",
            "near_duplicates",
            "label_issues",
            "outliers",
            "tiny",
            "extreme_aspect_ratio",
            "blank",
            "dark",
            "overexposed",
            "blurry",
            "unusual",
        )
    }
    # error-level: broken files
    for i in range(3):
        p = take()
        p.write_bytes(b"")
        truth["unreadable"].append(rel(p))
        p = take()
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * (0.3 + 0.15 * i))])
        truth["truncated"].append(rel(p))
    for name, payload in (
        ("Thumbs.db", bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 504),
        ("notes.txt", b"remember to sort these\n"),
        ("page.jpg", b"<html><body>404 Not Found</body></html>\n"),
    ):
        p = root / "train" / "dogs" / name
        p.write_bytes(payload)
        truth["not_an_image"].append(rel(p))
    for i in range(3):
        p = take()
        bomb = p.with_name(f"huge_{i}.png")
        bomb.write_bytes(_png_claiming(img(p).resize((64, 48)), 20000 + i, 20000))
        truth["decompression_bomb"].append(rel(bomb))
    # duplicates (new files next to their originals)
    for i in range(3):
        p = take()
        copy = p.with_name(f"{p.stem} (copy {i}).jpg")
        shutil.copy(p, copy)
        truth["exact_duplicates"].append(rel(copy))
        p = take()
        other = "dogs" if p.parent.name == "cats" else "cats"
        copy = root / "train" / other / f"also_{p.name}"
        shutil.copy(p, copy)
        truth["conflicting_labels"].append(rel(copy))
    for _ in range(3):  # leaks: exact, and resized/re-encoded into validation
        p = take()
        leak = root / "validation" / p.parent.name / f"leak_{p.name}"
        shutil.copy(p, leak)
        truth["leakage"].append(rel(leak))
        p = take()
        im = img(p)
        leak = root / "validation" / p.parent.name / f"leak_small_{p.stem}.jpg"
        _jpeg(im.resize((im.width * 3 // 4, im.height * 3 // 4)), leak, quality=75)
        truth["leakage"].append(rel(leak))
    for i in range(3):  # near duplicates: resized, re-encoded, slightly cropped
        p = take()
        im = img(p)
        f = 0.5 + 0.1 * i
        _jpeg(
            im.resize((int(im.width * f), int(im.height * f)), Image.Resampling.LANCZOS),
            p.with_name(f"{p.stem}_small.jpg"),
        )
        truth["near_duplicates"].append(rel(p.with_name(f"{p.stem}_small.jpg")))
        p = take()
        _jpeg(img(p), p.with_name(f"{p.stem}_q{25 + 10 * i}.jpg"), quality=25 + 10 * i)
        truth["near_duplicates"].append(rel(p.with_name(f"{p.stem}_q{25 + 10 * i}.jpg")))
        p = take()
        im = img(p)
        m = 0.03 + 0.015 * i
        w, h = im.size
        _jpeg(
            im.crop((int(m * w), int(m * h), int((1 - m) * w), int((1 - m) * h))),
            p.with_name(f"{p.stem}_crop.jpg"),
        )
        truth["near_duplicates"].append(rel(p.with_name(f"{p.stem}_crop.jpg")))
    # wrong labels: real photos moved to the other class
    for _ in range(10):
        p = take()
        other = "dogs" if p.parent.name == "cats" else "cats"
        dst = root / "train" / other / p.name
        shutil.move(p, dst)
        truth["label_issues"].append(rel(dst))
    # outliers: real photos of something else
    for i, photo in enumerate(_off_topic_photos()):
        cls = ("cats", "dogs")[i % 2]
        dst = root / "train" / cls / f"offtopic_{i}.jpg"
        _jpeg(photo, dst)
        truth["outliers"].append(rel(dst))
    # image quality, made in place from real photos
    for i in range(3):
        p = take()
        im = img(p)
        _jpeg(im.resize((40 + 4 * i, 30 + 3 * i)), p)
        truth["tiny"].append(rel(p))
        p = take()
        im = img(p)
        _jpeg(
            im.crop((0, im.height // 2 - 40, im.width, im.height // 2 + 40)).resize(
                (420 + 40 * i, 105)
            ),
            p,
        )
        truth["extreme_aspect_ratio"].append(rel(p))
        p = take()
        level = 90 + 40 * i
        grey = img(p).point(lambda v, level=level: level)
        noise = rng.normal(0, 1.5, (grey.height, grey.width, 3))
        _jpeg(Image.fromarray(np.clip(np.asarray(grey) + noise, 0, 255).astype(np.uint8)), p)
        truth["blank"].append(rel(p))
        p = take()
        _jpeg(ImageEnhance.Brightness(img(p)).enhance(0.08 + 0.03 * i), p)
        truth["dark"].append(rel(p))
        p = take()
        im = img(p)
        _jpeg(
            Image.blend(
                ImageEnhance.Brightness(im).enhance(1.6),
                Image.new("RGB", im.size, "white"),
                0.8 + 0.05 * i,
            ),
            p,
        )
        truth["overexposed"].append(rel(p))
        p = take()
        _jpeg(img(p).filter(ImageFilter.GaussianBlur(6 + i)), p)
        truth["blurry"].append(rel(p))
    # valid but unusual, each from its own photo, in place: must never be an error
    for _ in range(3):
        for kind in ("cmyk", "grey", "exif", "png"):
            p = take()
            im = img(p)
            if kind == "cmyk":
                _jpeg(im.convert("CMYK"), p)
            elif kind == "grey":
                _jpeg(im.convert("L"), p)
            elif kind == "exif":
                exif = Image.Exif()
                exif[0x0112] = 6
                _jpeg(im.transpose(Image.Transpose.ROTATE_90), p, exif=exif.tobytes())
            else:
                im.save(p, "PNG")  # a PNG named .jpg
            truth["unusual"].append(rel(p))
    return truth


# Planted files that are also a fair answer for another check (a blanked photo *is* an outlier,
# a copy under the other class *is* an exact duplicate and carries a wrong label...).
ALSO_CORRECT = {
    "outliers": (
        "blank",
        "dark",
        "overexposed",
        "blurry",
        "tiny",
        "extreme_aspect_ratio",
        "label_issues",
        "unusual",
    ),
    "label_issues": (
        "conflicting_labels",
        "outliers",
        "blank",
        "dark",
        "overexposed",
        "blurry",
        "tiny",
        "extreme_aspect_ratio",
        "unusual",
    ),
    "exact_duplicates": ("leakage", "conflicting_labels"),
    "near_duplicates": ("leakage", "blank", "dark", "overexposed"),  # blank images look alike
    "conflicting_labels": (),
    "leakage": (),
    **{
        check: ("outliers",)
        for check in ("tiny", "extreme_aspect_ratio", "blank", "dark", "overexposed", "blurry")
    },  # off-topic photos vary
}


def score(report: dict, truth: dict[str, list[str]]) -> list[dict]:
    """Recall (planted files reported by their check) and precision (findings of a check that
    involve a planted problem) per check."""
    rows = []
    for check, planted in truth.items():
        if check == "unusual":
            continue
        findings = [f for f in report["findings"] if f["check"] == check]
        reported = {p for f in findings for p in f["files"]}
        hit = [p for p in planted if p in reported]
        accept = set(planted)
        for other in ALSO_CORRECT.get(check, ()):
            accept |= set(truth.get(other, ()))
        good = [f for f in findings if accept & set(f["files"])]
        extra = [f["files"] for f in findings if not accept & set(f["files"])]
        rows.append(
            {
                "check": check,
                "planted": len(planted),
                "found": len(hit),
                "recall": len(hit) / len(planted) if planted else None,
                "findings": len(findings),
                "precision": len(good) / len(findings) if findings else None,
                "missed": [p for p in planted if p not in reported],
                "unplanted_findings": extra[:10],
            }
        )
    unusual = set(truth["unusual"])
    rows.append(
        {
            "check": "valid-but-unusual",
            "planted": len(unusual),
            "errors": sorted(
                {
                    p
                    for f in report["findings"]
                    if f["severity"] == "error"
                    for p in f["files"]
                    if p in unusual
                }
            ),
            "warnings": sorted(
                {
                    f"{p} ({f['check']})"
                    for f in report["findings"]
                    if f["severity"] == "warning"
                    for p in f["files"]
                    if p in unusual
                }
            ),
        }
    )
    return rows


def plant_listing(root: Path) -> dict[str, list[str]]:
    """A CSV-labelled flat folder with listing and balance problems; returns what was planted."""
    cvd = DATASETS / "cats-vs-dogs" / "train"
    images = root / "images"
    images.mkdir(parents=True)
    cats = sorted((cvd / "cats").iterdir(), key=lambda p: p.name)[:60]
    dogs = sorted((cvd / "dogs").iterdir(), key=lambda p: p.name)[:8]
    rows = []
    for f in cats + dogs:
        shutil.copy(f, images / f.name)
    truth: dict[str, list[str]] = {
        k: []
        for k in (
            "missing_files",
            "unlabelled_files",
            "name_mismatch",
            "empty_labels",
            "conflicting_rows",
        )
    }
    for f in cats[:50] + dogs:
        rows.append((f.name, f.parent.name))
    for i in range(5):
        rows.append((f"cat.gone{i}.jpg", "cats"))
        truth["missing_files"].append(f"images/cat.gone{i}.jpg")
    for f in cats[50:53]:  # saved as PNG under .png, the CSV still says .jpg
        with Image.open(images / f.name) as im:
            im.save(images / f"{Path(f.name).stem}.png", "PNG")
        (images / f.name).unlink()
        rows.append((f.name, "cats"))
        truth["name_mismatch"].append(f"images/{Path(f.name).stem}.png")
    for f in cats[53:55]:
        rows.append((f.name, ""))
        truth["empty_labels"].append(f"images/{f.name}")
    for f in cats[55:57]:
        rows.append((f.name, "cats"))
        rows.append((f.name, "dogs"))
        truth["conflicting_rows"].append(f"images/{f.name}")
    for f in cats[57:60]:  # no row at all
        truth["unlabelled_files"].append(f"images/{f.name}")
    truth["unlabelled_files"] += truth["empty_labels"] + truth["conflicting_rows"]
    (root / "labels.csv").write_text("file,label\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return truth


def planted_benchmark(env: dict, keep: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="lv-doctor-planted-"))
    try:
        truth = plant(tmp / "pets")
        report, wall, cpu = doctor_json(tmp / "pets", env)
        rows = score(report, truth)
        listing_truth = plant_listing(tmp / "shelter")
        listing, _, _ = doctor_json(tmp / "shelter", env)
        rows_listing = score(listing, {**listing_truth, "unusual": []})[:-1]
        balance = {
            c: [f["message"] for f in listing["findings"] if f["check"] == c]
            for c in ("class_imbalance", "too_few_images")
        }
        return {
            "n_images": report["summary"]["n_images"],
            "seconds": wall,
            "cpu_seconds": cpu,
            "rows": rows + rows_listing,
            "balance": balance,
            "folder": str(tmp) if keep else None,
        }
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


# -- (b) speed against cleanvision ----------------------------------------------------------------


def cleanvision_python(arg: str | None) -> Path | None:
    candidate = (
        arg
        or os.environ.get("CLEANVISION_PYTHON")
        or str(REPO / ".dev" / "cleanvision-env" / "bin" / "python")
    )
    return Path(candidate) if Path(candidate).is_file() else None


def speed_benchmark(env: dict, cache: Path, cv_python: Path | None) -> dict:
    cvd = DATASETS / "cats-vs-dogs"
    warm_page_cache(cvd)
    export_s = prepare_backbone(env)  # converts weights / exports ONNX only if not done yet
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    load_cold = os.getloadavg()[0]
    report, cold, cold_cpu = doctor_json(cvd, env)
    warm_report, warm, warm_cpu = doctor_json(cvd, env)
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    quick_report, quick, quick_cpu = doctor_json(cvd, env, "--quick")
    ours = {c for c in report["summary"]["by_check"]}
    ours_quick = {c for c in quick_report["summary"]["by_check"]}
    result = {
        "n_images": report["summary"]["n_images"],
        "backbone_export_s": export_s,
        "cold_s": cold,
        "cold_cpu_s": cold_cpu,
        "warm_s": warm,
        "warm_cpu_s": warm_cpu,
        "quick_s": quick,
        "quick_cpu_s": quick_cpu,
        "quick_found": quick_report["summary"]["by_check"],
        "load_before_cold": load_cold,
        "timings_cold": report["summary"]["timings"],
        "doctor_found": report["summary"]["by_check"],
    }
    if cv_python is None:
        result["cleanvision"] = "not run: no cleanvision environment (see --cleanvision-python)"
        return result
    load_cv = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lv-cv-") as tmp:
        code = Path(tmp) / "run_cleanvision.py"
        code.write_text(_CLEANVISION_CODE)
        wall, cpu, out = run_timed([str(cv_python), str(code), str(cvd)], dict(os.environ))
    line = next(x for x in out.splitlines() if x.startswith("CLEANVISION_JSON "))
    cv = json.loads(line.split(" ", 1)[1])
    cv_found = {k: v for k, v in cv["issues"].items() if v > 0}
    comparison = []
    for issue, n in sorted(cv["issues"].items()):
        check = CLEANVISION_TO_DOCTOR.get(issue)
        mine = report["summary"]["by_check"].get(check, {})
        comparison.append(
            {
                "cleanvision": issue,
                "cleanvision_images": n,
                "doctor_check": check,
                "doctor_files": mine.get("files", 0),
                "quick_files": quick_report["summary"]["by_check"].get(check, {}).get("files", 0),
                "covered": n == 0 or check in ours,
                "covered_quick": n == 0 or check in ours_quick,
            }
        )
    only_doctor = sorted(ours - {CLEANVISION_TO_DOCTOR.get(k) for k in cv_found})
    result["cleanvision"] = {
        "seconds_inside": cv["seconds"],
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load_cv,
        "issues": cv["issues"],
        "n_images": cv["n_images"],
    }
    result["comparison"] = comparison
    result["only_doctor"] = only_doctor
    result["speedup_cold"] = wall / cold
    result["speedup_cold_cpu"] = cpu / cold_cpu
    result["speedup_warm"] = wall / warm
    result["speedup_warm_cpu"] = cpu / warm_cpu
    result["speedup_quick"] = wall / quick
    result["speedup_quick_cpu"] = cpu / quick_cpu
    return result


def label_noise_at_scale(
    cache: Path, n_flips: int = 40, seeds: int = 3, precision: str = "fp32"
) -> list[dict]:
    """Recall of the label check on all of cats-vs-dogs with ``n_flips`` labels swapped at
    random (several draws), from the embeddings the speed run cached."""
    os.environ["LITTLEVISION_CACHE"] = str(cache)
    from littlevision.data.dataset import Dataset
    from littlevision.doctor.confident import find_label_issues
    from littlevision.doctor.labels import out_of_fold_probabilities
    from littlevision.features import Embedder

    ds = Dataset.from_folder(DATASETS / "cats-vs-dogs")
    emb = Embedder("lite0", precision=precision).embed_paths(ds.paths)
    feats = emb.features / np.linalg.norm(emb.features, axis=1, keepdims=True)
    y = ds.y[emb.ok_indices]
    clean = find_label_issues(y, out_of_fold_probabilities(feats, y, 2)).is_issue
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        flip = rng.choice(len(y), n_flips, replace=False)
        noisy = y.copy()
        noisy[flip] = 1 - noisy[flip]
        issue = find_label_issues(noisy, out_of_fold_probabilities(feats, noisy, 2)).is_issue
        extra = issue.copy()
        extra[flip] = False
        rows.append(
            {
                "seed": seed,
                "flipped": n_flips,
                "found": int(issue[flip].sum()),
                "recall": float(issue[flip].mean()),
                "flagged": int(issue.sum()),
                "other_flagged": int(extra.sum()),
                "other_also_flagged_without_flips": int((extra & clean).sum()),
            }
        )
    return rows


def _cleanlab_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    """cleanlab's ``find_label_issues`` (prune by noise rate, its default), or None without it."""
    try:
        from cleanlab.filter import find_label_issues as cleanlab_find
    except ImportError:
        return None
    return np.asarray(cleanlab_find(labels, probs), dtype=bool)


def _score_flags(flags: np.ndarray, truth: np.ndarray) -> dict:
    found, flagged = int((flags & truth).sum()), int(flags.sum())
    return {
        "found": found,
        "planted": int(truth.sum()),
        "recall": found / max(int(truth.sum()), 1),
        "flagged": flagged,
        "precision": found / flagged if flagged else None,
    }


def label_methods(cache: Path, seeds: int = 3, n_flips: int = 40) -> dict:
    """The doctor's own confident learning against cleanlab's ``find_label_issues`` on the same
    out-of-fold probabilities: (1) the planted benchmark's 10 swapped labels (3 plantings),
    (2) all of cats-vs-dogs with ``n_flips`` labels swapped at random (3 draws)."""
    os.environ["LITTLEVISION_CACHE"] = str(cache)
    from littlevision.data.dataset import Dataset
    from littlevision.doctor.confident import find_label_issues
    from littlevision.doctor.labels import out_of_fold_probabilities
    from littlevision.features import Embedder

    embedder = Embedder("lite0")
    rows = []

    def compare(where: str, seed: int, feats, labels, truth) -> None:
        t0 = time.perf_counter()
        probs = out_of_fold_probabilities(feats, labels, 2)
        oof_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = find_label_issues(labels, probs).is_issue
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = _cleanlab_issues(labels, probs)
        theirs_s = time.perf_counter() - t0
        row = {"where": where, "seed": seed, "n": len(labels), "oof_s": oof_s}
        row["doctor"] = {**_score_flags(ours, truth), "seconds": ours_s}
        if theirs is not None:
            row["cleanlab"] = {**_score_flags(theirs, truth), "seconds": theirs_s}
        rows.append(row)

    for seed in range(seeds):
        tmp = Path(tempfile.mkdtemp(prefix="lv-doctor-labels-"))
        try:
            truth_files = set(plant(tmp / "pets", seed=seed)["label_issues"])
            ds = Dataset.from_folder(tmp / "pets")
            emb = embedder.embed_paths(ds.paths)
            feats = emb.features / np.linalg.norm(emb.features, axis=1, keepdims=True)
            paths = [ds.paths[i] for i in emb.ok_indices]
            truth = np.array([p.relative_to(tmp / "pets").as_posix() in truth_files for p in paths])
            compare("planted", seed, feats, ds.y[emb.ok_indices], truth)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    ds = Dataset.from_folder(DATASETS / "cats-vs-dogs")
    emb = embedder.embed_paths(ds.paths)
    feats = emb.features / np.linalg.norm(emb.features, axis=1, keepdims=True)
    y = ds.y[emb.ok_indices]
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        flip = rng.choice(len(y), n_flips, replace=False)
        noisy = y.copy()
        noisy[flip] = 1 - noisy[flip]
        truth = np.zeros(len(y), bool)
        truth[flip] = True
        compare("cats-vs-dogs", seed, feats, noisy, truth)
    return {"rows": rows}


# -- (c) cat-breeds -------------------------------------------------------------------------------


def breeds_truth(folder: Path) -> dict:
    """The problems cat-breeds has, found independently of littlevision (bytes and names)."""
    images = folder / "images"
    by_digest: dict[str, list[str]] = {}
    odd_format = []
    magic = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"RIFF": ".webp", b"GIF8": ".gif"}
    for f in sorted(images.iterdir()):
        data = f.read_bytes()
        by_digest.setdefault(hashlib.sha256(data).hexdigest(), []).append(f.name)
        kind = next((ext for m, ext in magic.items() if data.startswith(m)), "?")
        if kind != {".jpeg": ".jpg"}.get(f.suffix.lower(), f.suffix.lower()):
            odd_format.append(f.name)
    ids = [
        line.split(",", 1)[0]
        for line in (folder / "labels.csv").read_text().splitlines()[1:]
        if line.strip()
    ]
    present = {f.name for f in images.iterdir()}
    stems = {Path(n).stem: n for n in present}
    missing = [i for i in ids if i not in present and Path(i).stem not in stems]
    renamed = sorted(stems[Path(i).stem] for i in ids if i not in present and Path(i).stem in stems)
    return {
        "exact_duplicate_groups": sorted(sorted(g) for g in by_digest.values() if len(g) > 1),
        "odd_format": odd_format,
        "missing_rows": len(missing),
        "renamed": renamed,
    }


def breeds_benchmark(env: dict, cache: Path) -> dict:
    folder = DATASETS / "cat-breeds"
    warm_page_cache(folder)
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    truth = breeds_truth(folder)
    report, wall, cpu = doctor_json(folder, env)
    by = {}
    for f in report["findings"]:
        by.setdefault(f["check"], []).append(f)
    dup_groups = sorted(
        sorted(Path(p).name for p in f["files"]) for f in by.get("exact_duplicates", [])
    )
    missing = sum(len(f["files"]) for f in by.get("missing_files", []))
    renamed = sorted(Path(f["files"][0]).name for f in by.get("name_mismatch", []))
    odd = sorted(Path(f["files"][0]).name for f in by.get("extension_mismatch", []))
    checks = {
        "exact duplicates": dup_groups == truth["exact_duplicate_groups"],
        "missing files (CSV rows without a file)": missing == truth["missing_rows"],
        "names differing from the CSV (.png/.jpeg named .jpg)": renamed == truth["renamed"],
        "the odd-format file (content vs extension)": odd == sorted(truth["odd_format"]),
    }
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "timings": report["summary"]["timings"],
        "truth": {k: (len(v) if isinstance(v, list) else v) for k, v in truth.items()},
        "reported": checks,
        "all_reported": all(checks.values()),
        "found": report["summary"]["by_check"],
    }


# -- output ---------------------------------------------------------------------------------------


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def print_tables(results: dict) -> None:
    print(f"machine: {results['machine']}, python {results['python']}\n")
    if "planted" in results:
        p = results["planted"]
        print(
            f"### (a) planted problems: {p['n_images']} images, doctor {p['seconds']:.1f} s "
            f"wall ({p['cpu_seconds']:.1f} s CPU)\n"
        )
        print("| check | planted | found | recall | findings | precision |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in p["rows"]:
            if r["check"] == "valid-but-unusual":
                continue
            print(
                f"| {r['check']} | {r['planted']} | {r['found']} | {_pct(r['recall'])} | "
                f"{r['findings']} | {_pct(r['precision'])} |"
            )
        unusual = next(r for r in p["rows"] if r["check"] == "valid-but-unusual")
        print(
            f"\nvalid-but-unusual images: {unusual['planted']}, reported as error: "
            f"{len(unusual['errors'])}, as warning: {len(unusual['warnings'])} "
            f"{unusual['warnings'] or ''}"
        )
        print(f"balance: {p['balance']}")
        for r in p["rows"]:
            if r.get("missed") or r.get("unplanted_findings"):
                print(
                    f"- {r['check']}: missed {r.get('missed')}; unplanted findings "
                    f"{r.get('unplanted_findings')}"
                )
    if "speed" in results:
        s = results["speed"]
        print(f"\n### (b) cats-vs-dogs ({s['n_images']} images)\n")
        print("| tool | wall s | CPU s |")
        print("|---|---:|---:|")
        print(
            f"| littlevision doctor, cold embedding cache | {s['cold_s']:.1f} | "
            f"{s['cold_cpu_s']:.1f} |"
        )
        print(
            f"| littlevision doctor, warm (embeddings cached) | {s['warm_s']:.1f} | "
            f"{s['warm_cpu_s']:.1f} |"
        )
        print(
            f"| littlevision doctor --quick (no model), cold | {s['quick_s']:.1f} | "
            f"{s['quick_cpu_s']:.1f} |"
        )
        cv = s["cleanvision"]
        if isinstance(cv, dict):
            print(
                f"| cleanvision {cv['n_images']} images | {cv['wall_s']:.1f} | {cv['cpu_s']:.1f} |"
            )
            print(
                f"\ncleanvision time / doctor time (wall, CPU): cold {s['speedup_cold']:.2f}x, "
                f"{s['speedup_cold_cpu']:.2f}x; warm {s['speedup_warm']:.2f}x, "
                f"{s['speedup_warm_cpu']:.2f}x; --quick {s['speedup_quick']:.2f}x, "
                f"{s['speedup_quick_cpu']:.2f}x. Backbone ONNX export (once per install, not "
                f"included): {s['backbone_export_s']:.1f} s; 1-minute load average before the "
                f"cold run {s['load_before_cold']:.1f}, before cleanvision "
                f"{cv['load_before']:.1f}\n"
            )
            print(
                "| cleanvision issue | its images | doctor check | doctor files | --quick files |"
            )
            print("|---|---:|---|---:|---:|")
            for c in s["comparison"]:
                print(
                    f"| {c['cleanvision']} | {c['cleanvision_images']} | {c['doctor_check']} | "
                    f"{c['doctor_files']} | {c['quick_files']} |"
                )
            print(f"\nfound only by the doctor: {', '.join(s['only_doctor'])}")
        else:
            print(f"\ncleanvision: {cv}")
    if "label_noise" in results:
        print("\n### label check at scale: all of cats-vs-dogs, 40 labels swapped at random\n")
        print("| draw | found | recall | flagged | other flagged (of which also without swaps) |")
        print("|---:|---:|---:|---:|---:|")
        for r in results["label_noise"]:
            print(
                f"| {r['seed']} | {r['found']}/{r['flipped']} | {_pct(r['recall'])} | "
                f"{r['flagged']} | {r['other_flagged']} ({r['other_also_flagged_without_flips']}) |"
            )
    if "breeds" in results:
        b = results["breeds"]
        print(
            f"\n### (c) cat-breeds via its CSV: {b['seconds']:.1f} s wall "
            f"({b['cpu_seconds']:.1f} s CPU), cold embedding cache\n"
        )
        for what, ok in b["reported"].items():
            print(f"- {what}: {'reported' if ok else 'NOT REPORTED'}")
        print(f"\nreal problems (independent scan): {b['truth']}")


def print_label_methods(result: dict) -> None:
    print("\n### (d) wrong labels: the doctor's confident learning against cleanlab\n")
    print("| data | seed | images | method | found / planted | flagged | precision |")
    print("|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        for method in ("doctor", "cleanlab"):
            if method not in r:
                continue
            m = r[method]
            print(
                f"| {r['where']} | {r['seed']} | {r['n']} | {method} | {m['found']} / "
                f"{m['planted']} | {m['flagged']} | {_pct(m['precision'])} |"
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["planted", "speed", "breeds", "labels"])
    parser.add_argument("--cleanvision-python", default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the planted folder.")
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "int8"], help="Doctor's embeddings."
    )
    args = parser.parse_args(argv)
    if not (DATASETS / "cats-vs-dogs").is_dir():
        raise SystemExit(f"benchmark data not found at {DATASETS}")
    OUT.mkdir(exist_ok=True)
    cache = OUT / "doctor-cache"
    env = {**fresh_env(cache), "BENCH_PRECISION": args.precision}
    results: dict = {
        "precision": args.precision,
        "machine": machine(),
        "python": sys.version.split()[0],
        "load_at_start": os.getloadavg(),
    }
    if "planted" in args.parts:
        shutil.rmtree(cache / "embeddings", ignore_errors=True)
        results["planted"] = planted_benchmark(env, keep=args.keep)
    if "speed" in args.parts:
        results["speed"] = speed_benchmark(env, cache, cleanvision_python(args.cleanvision_python))
        results["label_noise"] = label_noise_at_scale(cache, precision=args.precision)
    if "breeds" in args.parts:
        results["breeds"] = breeds_benchmark(env, cache)
    if "labels" in args.parts:
        results["labels"] = label_methods(cache)
    (OUT / f"doctor-{args.precision}.json").write_text(json.dumps(results, indent=2, default=str))
    print_tables(results)
    if "labels" in results:
        print_label_methods(results["labels"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
