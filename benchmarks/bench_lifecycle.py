"""Living-model benchmark: unknown detection, the feedback loop, warm retrain, novelty's cost.

Run with ``make bench BENCH=lifecycle`` or
``.venv/bin/python benchmarks/bench_lifecycle.py [--only novelty,loop,retrain,cost]``.
Needs ``../shared/datasets``; every server listens on 127.0.0.1; load loops are bounded.

1. ``novelty``: AUROC of the novelty score (the bundle's kNN scorer on the model's features)
   between in-distribution validation images and something else: a cat-breeds model facing
   cats-vs-dogs *dog* photos (target >= 0.95), a cats-vs-dogs model facing scikit-learn's digits
   (>= 0.99); false-unknown rate on held-out in-distribution images (<= 7%). Both scores of
   docs/lifecycle.md (kNN and Mahalanobis) are reported.
2. ``loop``: version 1 trained on 50 cats-vs-dogs photos per class (validated on the 800 of
   validation/); 500 corrections per class sent to /v1/feedback of the running service;
   ``littlevision retrain`` under a steady load of concurrency 8; the time until the service
   answers with the new version (<= 10 s) and failed requests (0); its validation accuracy
   against a model trained on all of them at once (within 0.5 points); ``rollback`` under load:
   byte-identical, 0 failed.
3. ``retrain``: ``littlevision retrain`` wall time with a warm embedding cache on a run of 2,800
   images (<= 15 s on 2 cores).
4. ``cost``: throughput at concurrency 32 with and without the novelty score (<= 5% lower).

Prints Markdown and writes ``.bench/lifecycle.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import RawHttpClient, Server, closed_loop  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench" / "lifecycle"
CLI = [sys.executable, "-m", "littlevision.cli"]


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- 1. unknown detection ----------------------------------------------------------------------


def bench_novelty() -> dict:
    from littlevision.data.dataset import Dataset
    from littlevision.data.demo import write_digits_folder
    from littlevision.features import Embedder
    from littlevision.models.novelty import NoveltyScorer, auroc

    emb = Embedder("lite0")

    def feats(ds):
        e = emb.embed_paths(ds.paths)
        return e.features, ds.y[e.ok_indices]

    breeds = Dataset.from_csv(
        DATASETS / "cat-breeds" / "labels.csv", DATASETS / "cat-breeds" / "images"
    )
    cvd = Dataset.from_folder(DATASETS / "cats-vs-dogs" / "train")
    dogs = Dataset.from_folder(DATASETS / "cats-vs-dogs" / "validation").where(label="dogs")
    digits = Dataset.from_folder(write_digits_folder(OUT / "digits"))
    out = {"load_before": load_avg()}
    cases = {
        "cat-breeds model vs cats-vs-dogs dogs": (breeds, dogs),
        "cats-vs-dogs model vs digits": (cvd, digits),
    }
    for name, (inside, outside) in cases.items():
        train, rest = inside.split(0.3, seed=0)  # 70% reference, 15% threshold, 15% held out
        val, held = rest.split(0.5, seed=1)
        (xt, yt), (xv, _), (xh, _), (xo, _) = (feats(d) for d in (train, val, held, outside))
        for method in ("knn", "mahalanobis"):
            t0 = time.perf_counter()
            scorer = NoveltyScorer(method=method).fit(xt, yt, xv)
            fit_s = time.perf_counter() - t0
            sv, sh, so = scorer.score(xv), scorer.score(xh), scorer.score(xo)
            out[f"{name} / {method}"] = {
                "auroc": auroc(sv, so),
                "false_unknown_held_out": float(scorer.unknown(sh).mean()),
                "flagged_outside": float(scorer.unknown(so).mean()),
                "n": [len(xt), len(xv), len(xh), len(xo)],
                "fit_s": round(fit_s, 2),
            }
    out["load_after"] = load_avg()
    return out


# -- 2. the loop -------------------------------------------------------------------------------


def tutorial_slice(dest: Path, per_class: int, first: int = 0) -> Path:
    """train/ with ``per_class`` photos per class (from ``first``), validation/ with all 800."""
    if dest.exists():
        shutil.rmtree(dest)
    for cls in ("cats", "dogs"):
        files = sorted((DATASETS / "cats-vs-dogs" / "train" / cls).iterdir(), key=lambda p: p.name)
        (dest / "train" / cls).mkdir(parents=True)
        for f in files[first : first + per_class]:
            os.symlink(f, dest / "train" / cls / f.name)
        (dest / "validation").mkdir(exist_ok=True)
        os.symlink(DATASETS / "cats-vs-dogs" / "validation" / cls, dest / "validation" / cls)
    return dest


def _train(data: Path, run: Path) -> dict:
    if run.exists():
        shutil.rmtree(run)
    t0 = time.perf_counter()
    p = subprocess.run([*CLI, "train", str(data), "-o", str(run), "-q", "--no-report"], check=True)
    assert p.returncode == 0
    card = json.loads((run / "card.json").read_text())
    return {"seconds": round(time.perf_counter() - t0, 1), "accuracy": card["metrics"]["accuracy"]}


def _send_feedback(url: str, per_class: int, first: int) -> dict:
    import httpx

    t0, statuses = time.perf_counter(), {}
    with httpx.Client(timeout=60) as client:
        for cls in ("cats", "dogs"):
            files = sorted(
                (DATASETS / "cats-vs-dogs" / "train" / cls).iterdir(), key=lambda p: p.name
            )[first : first + per_class]
            for f in files:
                r = client.post(
                    url + "/v1/feedback",
                    params={"label": cls},
                    content=f.read_bytes(),
                    headers={"Content-Type": "image/jpeg"},
                )
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    return {"statuses": statuses, "seconds": round(time.perf_counter() - t0, 1)}


class SteadyLoad:
    """Concurrency-N closed loop of /v1/predict in a thread until the block ends (or
    ``seconds``): every answer's status is counted, a dropped connection as status 0."""

    def __init__(self, url: str, images: list[bytes], concurrency: int, seconds: float) -> None:
        self.url, self.images, self.concurrency, self.seconds = url, images, concurrency, seconds
        self.stop = threading.Event()
        self.result: dict = {"statuses": {}}
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        statuses = self.result["statuses"]
        end = time.monotonic() + self.seconds

        async def worker(k: int) -> None:
            client, i = RawHttpClient(self.url), k
            try:
                while not self.stop.is_set() and time.monotonic() < end:
                    i += 1
                    try:
                        status = await client.post(
                            "/v1/predict", self.images[i % len(self.images)], "image/jpeg"
                        )
                    except (OSError, asyncio.IncompleteReadError):
                        status = 0
                        await client.close()
                    statuses[status] = statuses.get(status, 0) + 1
            finally:
                await client.close()

        await asyncio.gather(*(worker(k) for k in range(self.concurrency)))

    def __enter__(self) -> SteadyLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(120)


def _served_version(url: str) -> str | None:
    import httpx

    try:
        return httpx.get(url + "/v1/model", timeout=5).json()["version"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _switch_under_load(url: str, images, command: list[str], seconds: float) -> dict:
    """Run ``command`` (retrain or rollback) while concurrency 8 predicts; time the switch."""
    before = _served_version(url)
    with SteadyLoad(url, images, 8, seconds) as load:
        time.sleep(2)
        t0 = time.perf_counter()
        p = subprocess.run(command, capture_output=True, text=True)
        done = time.perf_counter()
        switched_after = None
        while time.perf_counter() - done < 30:
            if _served_version(url) not in (None, before):
                switched_after = time.perf_counter() - done
                break
            time.sleep(0.1)
        time.sleep(2)  # and a little of the new version under the same load
    statuses = load.result.get("statuses", {})
    return {
        "command_rc": p.returncode,
        "command_s": round(done - t0, 1),
        "stdout": p.stdout[-2000:],
        "stderr": p.stderr[-500:],
        "switched_s_after_command": None if switched_after is None else round(switched_after, 2),
        "requests": sum(statuses.values()),
        "failed": sum(n for s, n in statuses.items() if s != 200),
        "statuses": statuses,
        "version_before": before,
        "version_after": _served_version(url),
    }


def bench_loop() -> dict:
    from littlevision._io import file_sha256

    out: dict = {"load_before": load_avg()}
    v1_data = tutorial_slice(OUT / "loop-v1-data", 50)
    run = OUT / "loop-run"
    out["v1_train"] = _train(v1_data, run)
    v1_onnx = file_sha256(run / "model.onnx")
    images = [
        f.read_bytes()
        for f in sorted((DATASETS / "cats-vs-dogs" / "validation" / "cats").iterdir())[:16]
    ]
    server = Server(run, "--watch-interval-s", "1", "--no-access-log")
    try:
        server.wait_ready()
        out["feedback"] = _send_feedback(server.url, 500, 50)
        out["retrain"] = _switch_under_load(
            server.url, images, [*CLI, "retrain", str(run), "--json", "-q"], 600
        )
        out["retrain_result"] = json.loads(out["retrain"].pop("stdout") or "{}")
        out["rollback"] = _switch_under_load(
            server.url, images, [*CLI, "rollback", str(run), "--json"], 25
        )
        out["rollback"].pop("stdout")
        out["rollback_byte_identical"] = file_sha256(run / "model.onnx") == v1_onnx
    finally:
        server.stop()
    all_data = tutorial_slice(OUT / "loop-all-data", 550)
    out["all_at_once"] = _train(all_data, OUT / "loop-all-run")
    v2 = out["retrain_result"].get("metrics", {}).get("accuracy")
    out["v2_accuracy"] = v2
    out["accuracy_gap_points"] = (
        None if v2 is None else round(100 * (out["all_at_once"]["accuracy"] - v2), 2)
    )
    out["load_after"] = load_avg()
    return out


# -- 3. warm retrain on 2,800 images -------------------------------------------------------------


def bench_retrain() -> dict:
    out: dict = {"load_before": load_avg()}
    data = tutorial_slice(OUT / "retrain-data", 1000)  # 2,000 train + 800 validation
    run = OUT / "retrain-run"
    out["v1_train"] = _train(data, run)
    feedback = run / "feedback" / "cats"
    feedback.mkdir(parents=True, exist_ok=True)
    for f in sorted((DATASETS / "cat-breeds" / "images").iterdir())[:40]:
        shutil.copy2(f, feedback / f.name)
    runs = []
    for _ in range(2):  # the first embeds the 40 new photos; the second is all warm
        t0 = time.perf_counter()
        p = subprocess.run(
            [*CLI, "retrain", str(run), "--json", "-q", "--force"], capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        result = json.loads(p.stdout or "{}")
        runs.append(
            {"wall_s": round(wall, 2), "in_process_s": result.get("seconds"), "rc": p.returncode}
        )
    out["runs"] = runs
    out["n_images"] = 2800 + 40
    out["load_after"] = load_avg()
    return out


# -- 4. the cost of novelty at concurrency 32 -----------------------------------------------------


def bench_cost(seconds: float = 20.0) -> dict:
    run = OUT / "loop-run" if (OUT / "loop-run").exists() else None
    if run is None:
        run = OUT / "cost-run"
        _train(tutorial_slice(OUT / "cost-data", 50), run)
    plain = OUT / "cost-plain"
    if plain.exists():
        shutil.rmtree(plain)
    plain.mkdir()
    for name in ("model.onnx", "labels.json", "metrics.json"):
        shutil.copy2(run / name, plain / name)
    card = json.loads((run / "card.json").read_text())
    card.pop("novelty", None)
    (plain / "card.json").write_text(json.dumps(card))
    images = [
        f.read_bytes()
        for f in sorted((DATASETS / "cats-vs-dogs" / "validation" / "dogs").iterdir())[:32]
    ]
    out: dict = {"load_before": load_avg(), "rounds": []}
    for _ in range(2):  # A B A B: the shared machine's load moves
        for name, folder in (("novelty", run), ("plain", plain)):
            server = Server(folder, "--watch-interval-s", "0", "--no-access-log")
            try:
                server.wait_ready()
                asyncio.run(closed_loop(server.url, images, 32, 200, 5))  # warm up
                r = asyncio.run(closed_loop(server.url, images, 32, 10**6, seconds))
                out["rounds"].append(
                    {"bundle": name, "img_s": round(r["img_s"], 1), "load": load_avg()}
                )
            finally:
                server.stop()
    mean = {
        k: float(np.mean([r["img_s"] for r in out["rounds"] if r["bundle"] == k]))
        for k in ("novelty", "plain")
    }
    out["img_s"] = mean
    out["cost_pct"] = round(100 * (1 - mean["novelty"] / mean["plain"]), 1)
    out["load_after"] = load_avg()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", default="novelty,loop,retrain,cost")
    a = p.parse_args(argv)
    if not (DATASETS / "cats-vs-dogs").is_dir():
        print(f"skipped: {DATASETS} is absent")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    results_file = OUT.parent / "lifecycle.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    benches = {
        "novelty": bench_novelty,
        "loop": bench_loop,
        "retrain": bench_retrain,
        "cost": bench_cost,
    }
    for name in a.only.split(","):
        print(f"== {name} (load {load_avg()})", flush=True)
        results[name] = benches[name]()
        results_file.write_text(json.dumps(results, indent=2, default=str))
        print(json.dumps(results[name], indent=2, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
