"""Serving benchmark: the service against the model's own ceiling, on loopback only.

Run with ``make bench BENCH=serve`` or ``.venv/bin/python benchmarks/bench_serve.py [--run RUN]``.
Without ``--run`` a small lite0 bundle is trained once into ``.bench/serve-run`` (about a minute).
Everything is bounded by a request count and a time limit, and every request goes to 127.0.0.1.

What it measures (targets from the serving issue):

1. the ceiling: ONNX Runtime in-process on pre-decoded images, batch 1 and ``--max-batch``;
2. the service (``python -m littlevision.serving.cli``, default settings) at concurrency 1, 8,
   32, posting real JPEG photos: throughput, p50/p99 latency, mean batch size
   (targets: concurrency 32 >= 70% of the ceiling; lite0 at concurrency 1 p50 <= 15 ms,
   p99 <= 50 ms);
3. a bad-input corpus (empty, random bytes, truncated, bomb, wrong types, bad base64, odd but
   valid formats...): 0 answers with status 5xx, and the service still answers afterwards;
4. overload: an open-loop arrival rate of 4x the measured capacity: accepted latency, share of
   429/503, server memory before and after;
5. SIGTERM under load: requests sent before the signal that were not answered ("lost", target 0)
   and the exit code (target 0).

Prints a Markdown table and writes ``.bench/serve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from littlevision._system import available_cores

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"
HOST = "127.0.0.1"


# -- set-up ------------------------------------------------------------------------------------


def train_small_bundle(run_dir: Path) -> Path:
    """A lite0 bundle from 30 + 30 cats-vs-dogs photos (the default recipe), made once."""
    if (run_dir / "model.onnx").is_file():
        return run_dir
    data = OUT / "serve-data"
    for cls in ("cats", "dogs"):
        (data / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((DATASETS / "cats-vs-dogs" / "train" / cls).iterdir())[:30]:
            shutil.copy2(f, data / cls / f.name)
    print(f"training a small lite0 bundle into {run_dir} ...", file=sys.stderr, flush=True)
    code = "import sys, littlevision; littlevision.train(sys.argv[1], sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, str(data), str(run_dir)], check=True)
    return run_dir


def photos(n: int) -> list[bytes]:
    """Real JPEGs from the validation split, both classes, as a client would send them."""
    files = []
    for cls in ("cats", "dogs"):
        files += sorted((DATASETS / "cats-vs-dogs" / "validation" / cls).iterdir())[: n // 2]
    return [f.read_bytes() for f in files]


class Ceiling:
    """In-process ONNX Runtime throughput on decoded images: what no service can beat.

    Measured once in full and then again around every load phase, because other work on a
    shared machine shifts the figures over minutes; each phase is compared with the ceiling
    measured right before and after it.
    """

    def __init__(self, run_dir: Path, images: list[bytes]) -> None:
        from littlevision.bundle import Bundle
        from littlevision.data.decode import load_image
        from littlevision.inference import make_session

        bundle = Bundle.load(run_dir)
        # ONNX Runtime's default session (threads spin between calls) and littlevision's (they
        # sleep), on every core: on a busy machine either can be faster; the ceiling is the best.
        self.sessions = [
            make_session(bundle.onnx_path, allow_spinning=spin) for spin in (True, False)
        ]
        self.size = bundle.image_size
        self.backbone = bundle.card.get("backbone")
        t0 = time.perf_counter()
        self.decoded = np.stack([load_image(d, self.size) for d in images])
        self.decode_ms = (time.perf_counter() - t0) * 1000 / len(images)

    def measure(self, batch: int, seconds: float) -> float:
        """Images per second at ``batch`` images per call, over about ``seconds``."""
        x = np.resize(self.decoded, (batch, self.size, self.size, 3))
        best = 0.0
        for session in self.sessions:
            session.run(None, {"image": x})  # warm-up
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / len(self.sessions):
                session.run(None, {"image": x})
                n += 1
            best = max(best, n * batch / (time.perf_counter() - t0))
        return best

    def full(self, max_batch: int, seconds: float) -> dict:
        out = {"image_size": self.size, "backbone": self.backbone, "decode_ms": self.decode_ms}
        for batch in sorted({1, max_batch, 32}):
            out[f"batch{batch}_img_s"] = self.measure(batch, seconds)
            out[f"batch{batch}_ms"] = batch * 1000 / out[f"batch{batch}_img_s"]
        out["ceiling_img_s"] = max(v for k, v in out.items() if k.endswith("_img_s"))
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, run_dir: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "littlevision.serving.cli",
            str(run_dir),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit("server not ready in time")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# -- load --------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class RawHttpClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the leanest load generator.

    The load generator shares the 2 cores with the service, so every millisecond of its CPU is
    taken from the service being measured. httpx spent about 1.5 ms of CPU per request here;
    this client spends a tenth of that (both are reported as ``client_cpu_ms``).
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        assert host == HOST, "loopback only"
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, content_type: str) -> int:
        """Send one request, read the whole answer, return its status."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: {content_type}"
            f"\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(b": ", 1) for line in lines[1:] if b": " in line)
        await self.reader.readexactly(int(headers.get(b"content-length", 0)))
        if headers.get(b"connection") == b"close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def closed_loop(
    url: str, images: list[bytes], concurrency: int, count: int, seconds: float
) -> dict:
    """``concurrency`` clients, each sending its next request when the last is answered."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    t_end = time.perf_counter() + seconds
    clients = [RawHttpClient(url) for _ in range(concurrency)]

    async def worker(k: int) -> None:
        nonlocal sent
        while sent < count and time.perf_counter() < t_end:
            sent += 1
            data = images[(sent + k) % len(images)]
            t0 = time.perf_counter()
            status = await clients[k].post("/v1/predict", data, "image/jpeg")
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker(k) for k in range(concurrency))), seconds + 60
        )
    finally:
        for c in clients:
            await c.close()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    requests = sum(statuses.values())
    return {
        "concurrency": concurrency,
        "requests": requests,
        "statuses": statuses,
        "img_s": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "seconds": elapsed,
        "client_cpu_ms": cpu * 1000 / max(1, requests),
    }


async def open_loop(
    url: str, images: list[bytes], rate: float, seconds: float, max_in_flight: int = 1000
) -> dict:
    """Requests arrive at ``rate`` per second whatever the answers: how overload really looks."""
    import httpx

    accepted: list[float] = []
    statuses: dict[int | str, int] = {}
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one(data: bytes) -> None:
            t0 = time.perf_counter()
            try:
                r = await client.post(
                    "/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}
                )
                key: int | str = r.status_code
                if r.status_code == 200:
                    accepted.append(time.perf_counter() - t0)
            except httpx.HTTPError as e:
                key = type(e).__name__
            statuses[key] = statuses.get(key, 0) + 1

        tasks = []
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < seconds:
            tasks.append(asyncio.create_task(one(images[i % len(images)])))
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
    rejected = sum(v for k, v in statuses.items() if k in (429, 503))
    return {
        "rate": rate,
        "sent": i,
        "statuses": statuses,
        "accepted": len(accepted),
        "rejected_share": rejected / max(1, i),
        "accepted_p50_ms": pct(accepted, 50) * 1000,
        "accepted_p99_ms": pct(accepted, 99) * 1000,
        "accepted_max_ms": max(accepted, default=float("nan")) * 1000,
    }


async def sigterm_under_load(
    server: Server, images: list[bytes], concurrency: int, before_s: float
) -> dict:
    """Load, SIGTERM, and check what happened to every request sent before the signal.

    "Sent" means its body was fully written to the socket (httpx's trace events), so a request
    still waiting in this client's event loop when the signal goes out is not counted as sent.
    """
    import httpx

    signalled_at = float("inf")
    before = {"ok": 0, "other": 0, "lost": 0}
    after: dict[str, int] = {}
    stop = False
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

        async def worker(k: int) -> None:
            n = 0
            while not stop:
                n += 1
                sent = [float("inf")]

                async def trace(event: str, info: dict, sent=sent) -> None:
                    if event == "http11.send_request_body.complete":
                        sent[0] = time.perf_counter()

                try:
                    r = await client.post(
                        "/v1/predict",
                        content=images[(n + k) % len(images)],
                        headers={"Content-Type": "image/jpeg"},
                        extensions={"trace": trace},
                    )
                    outcome = "ok" if r.status_code == 200 else "other"
                except httpx.ConnectError:
                    outcome = "refused"
                except httpx.HTTPError as e:
                    outcome = type(e).__name__
                if sent[0] < signalled_at:
                    before[outcome if outcome in before else "lost"] += 1
                else:
                    after[outcome] = after.get(outcome, 0) + 1
                    if outcome != "ok":
                        return

        tasks = [asyncio.create_task(worker(k)) for k in range(concurrency)]
        await asyncio.sleep(before_s)
        signalled_at = time.perf_counter()
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.0)
        stop = True
        await asyncio.gather(*tasks)
    code = server.proc.wait(60)
    return {
        "sent_before_sigterm": sum(before.values()),
        "answered_before": before["ok"],
        "lost": before["lost"],
        "non_200_before": before["other"],
        "after_sigterm": after,
        "exit_code": code,
    }


# -- bad input ---------------------------------------------------------------------------------


def png_bomb(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w`` x ``h`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def bad_corpus(photo: bytes) -> list[tuple[str, dict]]:
    """(name, httpx request kwargs) for every kind of bad input, plus odd valid images."""

    from PIL import Image

    rng = random.Random(0)
    raw = lambda data, ctype="image/jpeg": {"content": data, "headers": {"Content-Type": ctype}}  # noqa: E731
    cases = [
        ("empty body", raw(b"")),
        ("no content type", {"content": b""}),
        ("random bytes", raw(bytes(rng.getrandbits(8) for _ in range(8192)))),
        ("text as image", raw(b"hello world\n" * 50)),
        ("truncated jpeg", raw(photo[: len(photo) // 2])),
        ("jpeg header only", raw(photo[:300])),
        ("png bomb 30000x30000", raw(png_bomb(30000, 30000), "image/png")),
        ("huge body 25 MB", raw(b"\xff" * (25 * 1024 * 1024))),
        ("wrong content type", raw(photo, "text/plain")),
        ("missing field", {"files": {"image": ("a.jpg", photo, "image/jpeg")}}),
        ("invalid base64", {"json": {"image_base64": "@@@ not base64 @@@"}}),
        ("base64 of junk", {"json": {"image_base64": base64.b64encode(b"junk").decode()}}),
        ("json not an object", {"json": [1, 2, 3]}),
        ("malformed json", raw(b"{nope", "application/json")),
        ("multipart without boundary", raw(b"--x\r\n", "multipart/form-data")),
    ]
    for _ in range(20):
        n = rng.randint(1, 20000)
        cases.append((f"random {n} bytes", raw(bytes(rng.getrandbits(8) for _ in range(n)))))
    base = Image.open(io.BytesIO(photo))
    base.load()
    for name, mode, fmt in [
        ("png rgba", "RGBA", "PNG"),
        ("png grey", "L", "PNG"),
        ("gif palette", "P", "GIF"),
        ("jpeg cmyk", "CMYK", "JPEG"),
        ("webp", "RGB", "WEBP"),
        ("tiff", "RGB", "TIFF"),
        ("bmp", "RGB", "BMP"),
    ]:
        buffer = io.BytesIO()
        base.convert(mode).save(buffer, fmt)
        cases.append((f"valid {name}", raw(buffer.getvalue(), "application/octet-stream")))
    return cases


def bad_input(url: str, photo: bytes) -> dict:
    import httpx

    statuses: dict[str, int] = {}
    five = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, kwargs in bad_corpus(photo):
            r = client.post("/v1/predict", **kwargs)
            statuses[name] = r.status_code
            if r.status_code >= 500:
                five.append(name)
        after = client.post("/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"})
    return {
        "cases": len(statuses),
        "5xx": five,
        "statuses": statuses,
        "answers_afterwards": after.status_code == 200,
    }


def batch_stats(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from the service's batch-size histogram."""
    import httpx

    total = count = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("littlevision_batch_size_sum"):
            total = float(line.split()[1])
        elif line.startswith("littlevision_batch_size_count"):
            count = float(line.split()[1])
    return total, count


def load_phase(
    server: Server, ceil: Ceiling, images: list[bytes], conc: int, count: int, a: argparse.Namespace
) -> dict:
    """One closed-loop phase, compared with the ceiling measured just before and after it
    (the better of batch 1 and ``max_batch``, as the ceiling is defined)."""

    def ceiling_now() -> float:
        return max(ceil.measure(1, 1.5), ceil.measure(a.max_batch, 1.5))

    local = [ceiling_now()]
    images0, calls0 = batch_stats(server.url)
    cpu0 = server.cpu_s()
    r = asyncio.run(closed_loop(server.url, images, conc, count, a.seconds))
    r["server_cpu_ms"] = (server.cpu_s() - cpu0) * 1000 / max(1, r["requests"])
    images1, calls1 = batch_stats(server.url)
    local.append(ceiling_now())
    r["mean_batch"] = (images1 - images0) / max(1.0, calls1 - calls0)
    r["ceiling_around_img_s"] = local
    r["share_of_ceiling"] = r["img_s"] / (sum(local) / 2)
    return r


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None, help="bundle to serve (default: train one)")
    from littlevision.serving import ServeSettings

    p.add_argument(
        "--max-batch",
        type=int,
        default=ServeSettings().max_batch,
        help="the service's max batch (default: the service's default)",
    )
    p.add_argument("--seconds", type=float, default=20, help="time limit of each load phase")
    p.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    a = p.parse_args(argv)
    if not (DATASETS / "cats-vs-dogs").is_dir():
        raise SystemExit(f"benchmark data not found at {DATASETS / 'cats-vs-dogs'}")
    OUT.mkdir(exist_ok=True)
    run_dir = a.run or train_small_bundle(OUT / "serve-run")
    images = photos(64)
    scale = 0.25 if a.quick else 1.0
    result: dict = {
        "run": str(run_dir),
        "cores": available_cores(),
        "load_average_start": os.getloadavg(),
    }

    ceil = Ceiling(run_dir, images)
    result["ceiling"] = ceil.full(a.max_batch, seconds=3 if a.quick else 6)
    server = Server(run_dir, "--max-batch", str(a.max_batch), "--watch-interval-s", "0")
    try:
        server.wait_ready()
        result["rss_mb_idle"] = server.rss_mb()
        asyncio.run(closed_loop(server.url, images, 4, 16, 30))  # warm-up
        result["load"] = []
        for conc, count in ((1, 200), (8, 400), (32, 600)):
            r = load_phase(server, ceil, images, conc, int(count * scale), a)
            r["max_batch"] = a.max_batch
            result["load"].append(r)
        result["bad_input"] = bad_input(server.url, images[0])
        capacity = result["load"][2]["img_s"]
        rss_before = server.rss_mb()
        result["overload"] = asyncio.run(
            open_loop(server.url, images, 4 * capacity, seconds=10 * scale)
        )
        result["overload"]["rss_mb_before"] = rss_before
        result["overload"]["rss_mb_after"] = server.rss_mb()
        after = asyncio.run(closed_loop(server.url, images, 1, 5, 30))
        result["overload"]["answers_afterwards"] = after["statuses"] == {200: 5}
    finally:
        server.stop()

    # The same concurrency 32 with big batches: does more batching pay for this model here?
    big = 32
    server = Server(run_dir, "--max-batch", str(big), "--watch-interval-s", "0")
    try:
        server.wait_ready()
        asyncio.run(closed_loop(server.url, images, 4, 16, 30))  # warm-up
        r = load_phase(server, ceil, images, 32, int(600 * scale), a)
        r["max_batch"] = big
        result["load"].append(r)
    finally:
        server.stop()

    server = Server(run_dir, "--max-batch", str(a.max_batch), "--watch-interval-s", "0")
    try:
        server.wait_ready()
        result["sigterm"] = asyncio.run(sigterm_under_load(server, images, 16, 3.0))
    finally:
        server.stop()
    result["load_average_end"] = os.getloadavg()
    (OUT / "serve.json").write_text(json.dumps(result, indent=2, default=str))
    print(report(result))
    return 0


def report(r: dict) -> str:
    c = r["ceiling"]
    rows = [
        f"Bundle: {c['backbone']} at {c['image_size']} px, {r['cores']} cores, load average "
        f"{r['load_average_start'][0]:.1f} at start (other work on the machine lowers every "
        "figure).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| ceiling: ONNX Runtime in-process, batch 1 | {c['batch1_img_s']:.1f} img/s "
        f"({c['batch1_ms']:.1f} ms) |",
    ]
    mb = [k for k in c if k.startswith("batch") and k.endswith("_img_s") and k != "batch1_img_s"]
    for k in mb:
        n = k.removeprefix("batch").removesuffix("_img_s")
        rows.append(f"| ceiling: batch {n} | {c[k]:.1f} img/s |")
    rows.append(f"| decode one photo to {c['image_size']} px | {c['decode_ms']:.1f} ms |")
    for load in r["load"]:
        around = ", ".join(f"{x:.1f}" for x in load["ceiling_around_img_s"])
        rows.append(
            f"| service, concurrency {load['concurrency']}, max batch {load['max_batch']} | "
            f"{load['img_s']:.1f} img/s = "
            f"{load['share_of_ceiling'] * 100:.0f}% of the ceiling measured around it ({around}); "
            f"p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms; mean batch "
            f"{load['mean_batch']:.1f}; CPU per request: server {load['server_cpu_ms']:.1f} ms, "
            f"load generator {load['client_cpu_ms']:.1f} ms; {load['requests']} requests "
            f"{load['statuses']} |"
        )
    b = r["bad_input"]
    rows.append(
        f"| bad-input corpus | {b['cases']} cases, {len(b['5xx'])} answers 5xx, "
        f"answers afterwards: {b['answers_afterwards']} |"
    )
    o = r["overload"]
    rows.append(
        f"| overload at 4x capacity ({o['rate']:.0f} req/s offered, {o['sent']} sent) | "
        f"{o['rejected_share'] * 100:.0f}% got 429/503; accepted p50 {o['accepted_p50_ms']:.0f} "
        f"ms, p99 {o['accepted_p99_ms']:.0f} ms, max {o['accepted_max_ms']:.0f} ms; RSS "
        f"{o['rss_mb_before']:.0f} -> {o['rss_mb_after']:.0f} MB; {o['statuses']}; answers "
        f"afterwards: {o['answers_afterwards']} |"
    )
    s = r["sigterm"]
    rows.append(
        f"| SIGTERM under load (16 clients) | {s['sent_before_sigterm']} sent before the signal, "
        f"{s['answered_before']} answered 200, {s['lost']} lost; after: {s['after_sigterm']}; "
        f"exit code {s['exit_code']} |"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
