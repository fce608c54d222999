"""Ray benchmark: local Ray vs the local in-process path, streaming memory, Ray Serve vs serve.

Run with ``.venv/bin/python benchmarks/bench_ray.py`` (needs ``pip install 'littlevision[ray]'``;
``make bench BENCH=ray``). Prints a Markdown table and writes ``.bench/ray/ray.json``.

Targets (issue 8), on cats-vs-dogs (2800 photos) with a local Ray of 2 CPUs:
- the same predictions as ``Predictor.predict_paths`` (identical labels, probabilities within
  1e-5) and throughput >= 80% of it;
- memory bounded while streaming 20,000 paths (the folder repeated);
- Ray Serve answers as ``littlevision serve`` does, and no 5xx on a corpus of bad uploads.

Besides wall time, CPU seconds per image are measured (user + system time of every process
involved, sampled from /proc): on a machine shared with other work, wall time says how busy the
machine was, CPU time per image says what the work costs, and is what docs/scaling.md projects
from. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench" / "ray"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- measuring a process tree -----------------------------------------------------------------


class TreeSampler:
    """Samples RSS and CPU time of this process and all its descendants (the local Ray).

    RSS is summed over processes (shared pages, such as the object store's, count once per
    process that maps them: an upper bound). CPU time is the last value seen per process, so a
    worker that exits between samples loses at most one interval.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_rss = 0
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _tree() -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def sample(self) -> None:
        rss = 0
        for pid in self._tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError):
                continue
            cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
            if pid not in self._cpu_start:  # there before the work: count from now; new: all
                self._cpu_start[pid] = 0.0 if self._started else cpu
            self._cpu_last[pid] = cpu
            rss += pages * PAGE
        self.peak_rss = max(self.peak_rss, rss)

    _started = False

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._started = True
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __exit__(self, *exc) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    @property
    def cpu_s(self) -> float:
        return sum(self._cpu_last[p] - self._cpu_start.get(p, 0.0) for p in self._cpu_last)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# -- fixtures: a real bundle and a tiny one -----------------------------------------------------


def real_bundle(env: dict) -> Path:
    """The default recipe trained on 20 cats + 20 dogs (the predictions use the full lite0)."""
    run = OUT / "run"
    if (run / "model.onnx").is_file():
        return run
    data = OUT / "train40"
    for cls in ("cats", "dogs"):
        (data / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((DATASETS / "cats-vs-dogs" / "train" / cls).iterdir())[:20]:
            shutil.copy2(f, data / cls / f.name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "littlevision.cli",
            "train",
            str(data),
            "-o",
            str(run),
            "--quiet",
            "--no-report",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return run


def tiny_bundle() -> Path:
    """A 64 px mean-colour classifier: the decode-and-plumbing cost, nearly no model cost."""
    from onnx import TensorProto, helper, numpy_helper

    from littlevision._io import file_sha256, write_json

    run = OUT / "tiny"
    run.mkdir(parents=True, exist_ok=True)
    weights = np.array([[4.0, -4.0], [0.0, 0.0], [-4.0, 4.0]], np.float32) / 255.0
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["px"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["px"], ["m"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["m", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 64, 64, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (run / "model.onnx").write_bytes(model.SerializeToString())
    write_json(run / "labels.json", ["cats", "dogs"])
    write_json(
        run / "card.json",
        {
            "name": "tiny",
            "image_size": 64,
            "backbone": "none",
            "model_version": file_sha256(run / "model.onnx")[:12],
        },
    )
    write_json(run / "metrics.json", {"accuracy": 0.5})
    return run


# -- batch prediction ---------------------------------------------------------------------------


def read_csv(path: Path, labels: list[str]) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    probs = np.array([[float(r[c]) for c in labels] for r in rows], np.float64)
    return [r["path"] for r in rows], [r["label"] for r in rows], probs


def bench_batch(run: Path, tiny: Path, files: list[Path], n_stream: int) -> dict:
    from littlevision.bundle import Bundle
    from littlevision.inference import Predictor
    from littlevision.scale import predict_files, ray_session

    res: dict = {"n_images": len(files), "load_avg_start": load_average()}
    bundle = Bundle.load(run)
    predictor = Predictor.from_bundle(bundle)
    predictor.predict_paths(files[:32])  # warm-up: session, first allocations
    t0, c0 = time.perf_counter(), os.times()
    with TreeSampler() as mem:
        local = predictor.predict_paths(files, batch_size=32)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    res["local"] = {
        "img_s": len(files) / wall,
        "wall_s": wall,
        "cpu_s_per_img": cpu / len(files),
        "peak_rss_mb": mem.peak_rss / 2**20,
    }
    del predictor

    t0 = time.perf_counter()
    with ray_session(num_cpus=2) as _ray:
        res["ray_start_s"] = time.perf_counter() - t0
        with TreeSampler() as mem:
            summary = predict_files(bundle, files, OUT / "ray.csv", batch_size=32)
        res["ray"] = {
            "img_s": summary.images_per_s,
            "wall_s": summary.seconds,
            "cpu_s_per_img": mem.cpu_s / len(files),
            "peak_rss_mb": mem.peak_rss / 2**20,
            "num_actors": summary.num_actors,
            "threads_per_actor": summary.threads_per_actor,
        }
        paths, labels, probs = read_csv(OUT / "ray.csv", bundle.labels)
        res["parity"] = {
            "same_rows": paths == [str(p) for p in local.paths],
            "identical_labels": labels == local.predicted,
            "max_abs_prob_diff": float(np.abs(probs - local.probabilities).max()),
            "n_failures_local": len(local.failures),
            "n_failures_ray": len(summary.failures),
        }
        res["throughput_ratio"] = res["ray"]["img_s"] / res["local"]["img_s"]
        res["cpu_ratio"] = res["local"]["cpu_s_per_img"] / res["ray"]["cpu_s_per_img"]

        # Streaming: the same pipeline on 2800 and on n_stream paths; memory must not grow.
        stream = {}
        for n in (len(files), n_stream):
            many = (files * (n // len(files) + 1))[:n]
            with TreeSampler() as mem:
                s = predict_files(tiny, many, OUT / f"tiny-{n}.csv", batch_size=64)
            with open(OUT / f"tiny-{n}.csv", encoding="utf-8") as f:
                rows = sum(1 for _ in f) - 1
            stream[n] = {
                "peak_rss_mb": mem.peak_rss / 2**20,
                "img_s": s.images_per_s,
                "rows": rows,
                "cpu_s_per_img": mem.cpu_s / n,
            }
        res["stream"] = stream
    res["load_avg_end"] = load_average()
    return res


# -- serving --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def bad_requests(photo: bytes) -> dict[str, dict]:
    """httpx request kwargs for ``POST /v1/predict`` that must each get a 4xx."""
    jpeg = {"Content-Type": "image/jpeg"}
    rng = np.random.default_rng(0)
    return {
        "empty": {"content": b"", "headers": jpeg},
        "random_bytes": {
            "content": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
            "headers": jpeg,
        },
        "text": {"content": b"hello, I am not an image\n" * 10, "headers": jpeg},
        "truncated_jpeg": {"content": photo[: len(photo) // 2], "headers": jpeg},
        "jpeg_header_only": {"content": photo[:200], "headers": jpeg},
        "png_bomb": {"content": png_bomb(), "headers": {"Content-Type": "image/png"}},
        "html": {"content": b"<html><script>alert(1)</script></html>", "headers": jpeg},
        "wrong_content_type": {"content": photo, "headers": {"Content-Type": "video/mp4"}},
        "multipart_no_file": {"files": {"other": ("x.jpg", photo, "image/jpeg")}},
        "bad_base64": {"json": {"image_base64": "%%% not base64 %%%"}},
        "base64_of_text": {"json": {"image_base64": base64.b64encode(b"plain text").decode()}},
    }


def wait_ready(url: str, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not become ready")


def probe_service(url: str, photos: list[bytes], bad: dict[str, dict]) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        answers = []
        for data in photos:
            r = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
            answers.append(r.json() if r.status_code == 200 else {"status": r.status_code})
        statuses = {name: client.post("/v1/predict", **kw).status_code for name, kw in bad.items()}
        jobs = photos * 8
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda d: (
                        client.post(
                            "/v1/predict", content=d, headers={"Content-Type": "image/jpeg"}
                        ).status_code
                    ),
                    jobs,
                )
            )
        wall = time.perf_counter() - t0
    return {
        "answers": answers,
        "bad_statuses": statuses,
        "concurrent": {"n": len(jobs), "ok": codes.count(200), "req_s": len(jobs) / wall},
    }


def bench_serve(run: Path) -> dict:
    from littlevision.scale import ray_session, serve_ray
    from littlevision.serving import ServeSettings

    photos = [
        p.read_bytes()
        for cls in ("cats", "dogs")
        for p in sorted((DATASETS / "cats-vs-dogs" / "validation" / cls).iterdir())[:3]
    ]
    bad = bad_requests(photos[0])
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "littlevision.serving.cli",
            str(run),
            "--port",
            str(port),
            "--watch-interval-s",
            "0",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        plain = probe_service(f"http://127.0.0.1:{port}", photos, bad)
    finally:
        proc.terminate()
        proc.wait(30)
    with ray_session(num_cpus=2):
        t0 = time.perf_counter()
        service = serve_ray(
            run,
            1,
            port=free_port(),
            blocking=False,
            cpus_per_replica=2,
            settings=ServeSettings(watch_interval_s=0),
        )
        start_s = time.perf_counter() - t0
        try:
            on_ray = probe_service(service.url, photos, bad)
        finally:
            service.shutdown()
            from ray import serve

            serve.shutdown()
    diffs = []
    same_labels = True
    for a, b in zip(plain["answers"], on_ray["answers"], strict=True):
        same_labels &= a.get("label") == b.get("label")
        diffs.append(
            max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"])
        )
    return {
        "ray_serve_start_s": start_s,
        "n_photos": len(photos),
        "same_labels": same_labels,
        "max_abs_prob_diff": max(diffs),
        "bad_statuses_plain": plain["bad_statuses"],
        "bad_statuses_ray": on_ray["bad_statuses"],
        "same_bad_statuses": plain["bad_statuses"] == on_ray["bad_statuses"],
        "n_5xx_ray": sum(s >= 500 for s in on_ray["bad_statuses"].values()),
        "n_5xx_plain": sum(s >= 500 for s in plain["bad_statuses"].values()),
        "concurrent_plain": plain["concurrent"],
        "concurrent_ray": on_ray["concurrent"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="A run folder to use (default: train a small one).")
    p.add_argument("--stream", type=int, default=20_000, help="Paths in the streaming run.")
    p.add_argument(
        "--limit", type=int, default=None, help="Use only this many photos (smoke test)."
    )
    p.add_argument("--skip-serve", action="store_true")
    args = p.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("ray is not installed: pip install 'littlevision[ray]'") from None
    cvd = DATASETS / "cats-vs-dogs"
    if not cvd.is_dir():
        raise SystemExit(f"benchmark data not found at {cvd}")
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LITTLEVISION_CACHE", str(REPO / ".bench" / "cache"))
    run = args.run or real_bundle(dict(os.environ))
    files = sorted(cvd.rglob("*.jpg"))[: args.limit]
    results = {
        "machine": f"{os.cpu_count()} cores",
        "python": sys.version.split()[0],
        "ray": __import__("ray").__version__,
        "batch": bench_batch(run, tiny_bundle(), files, args.stream),
    }
    if not args.skip_serve:
        results["serve"] = bench_serve(run)
    (OUT / "ray.json").write_text(json.dumps(results, indent=2, default=str))
    report(results)


def report(r: dict) -> None:
    b = r["batch"]
    lo, ra, par = b["local"], b["ray"], b["parity"]
    print(
        f"load average {b['load_avg_start']:.1f} -> {b['load_avg_end']:.1f} on "
        f"{r['machine']}; Ray {r['ray']}; local Ray start-up {b['ray_start_s']:.1f} s\n"
    )
    print("| measure | value | target |\n|---|---|---|")
    print(
        f"| same predictions on {b['n_images']} images | rows {par['same_rows']}, labels "
        f"{par['identical_labels']}, max prob diff {par['max_abs_prob_diff']:.1e} | identical, "
        "<= 1e-5 |"
    )
    print(
        f"| local in-process predict | {lo['img_s']:.1f} img/s, {1000 * lo['cpu_s_per_img']:.1f}"
        f" CPU-ms/img | |"
    )
    print(
        f"| Ray Data predict ({ra['num_actors']} actors x {ra['threads_per_actor']} thread) | "
        f"{ra['img_s']:.1f} img/s, {1000 * ra['cpu_s_per_img']:.1f} CPU-ms/img | |"
    )
    print(f"| Ray / local throughput (wall) | {100 * b['throughput_ratio']:.0f}% | >= 80% |")
    print(f"| Ray / local work per image (CPU) | {100 * b['cpu_ratio']:.0f}% | |")
    print(
        f"| peak RSS, local / Ray (all processes) | {lo['peak_rss_mb']:.0f} / "
        f"{ra['peak_rss_mb']:.0f} MB | |"
    )
    for n, s in b["stream"].items():
        print(
            f"| stream {n} paths (64 px model): peak RSS, rows | {s['peak_rss_mb']:.0f} MB, "
            f"{s['rows']} rows, {s['img_s']:.0f} img/s | flat in N |"
        )
    if "serve" in r:
        s = r["serve"]
        print(
            f"| Ray Serve vs serve on {s['n_photos']} photos | labels {s['same_labels']}, max "
            f"prob diff {s['max_abs_prob_diff']:.1e} | same |"
        )
        print(
            f"| bad uploads ({len(s['bad_statuses_ray'])}): same status codes, 5xx | "
            f"{s['same_bad_statuses']}, {s['n_5xx_ray']} | same, 0 |"
        )
        cp, cr = s["concurrent_plain"], s["concurrent_ray"]
        print(
            f"| 48 requests, 8 clients: serve / Ray Serve | {cp['req_s']:.1f} / "
            f"{cr['req_s']:.1f} req/s ({cp['ok']}/{cr['ok']} ok) | |"
        )
        print(f"| Ray Serve start-up (1 replica) | {s['ray_serve_start_s']:.1f} s | |")


if __name__ == "__main__":
    main()
