"""Soak benchmark: the service for a long time at half its capacity, good and bad requests
mixed, a model reload every minute. Not part of ``make bench`` (it runs for 20 minutes).

Run with ``.venv/bin/python benchmarks/soak_serve.py [--run RUN] [--minutes 20]``. Without
``--run`` the serving benchmark's small lite0 bundle is trained once into ``.bench/serve-run``.
Everything goes to 127.0.0.1 and every loop is bounded by a time limit.

What it measures (targets from the reliability issue):

1. capacity: closed loop, concurrency 8, real JPEG photos (img/s);
2. the soak: an open loop at ``--load`` (0.5) x capacity for ``--minutes``; 80% real photos,
   20% bad requests (empty, random bytes, truncated JPEG, text, deeply nested JSON, bad
   base64, malformed JSON, a decompression bomb, multipart without a boundary, a malformed v2
   tensor); each minute ``POST /v1/reload``, three clients that hang up mid-upload and two that
   trickle their headers;
3. per minute: server RSS and open file descriptors, statuses, p50/p99 latency of the good
   requests. Targets: RSS and fds growth <= 5% after the warm-up minute, 0 answers 5xx, p99
   steady.

Prints a Markdown table and writes ``.bench/soak.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import (  # noqa: E402
    DATASETS,
    HOST,
    OUT,
    RawHttpClient,
    Server,
    closed_loop,
    pct,
    photos,
    png_bomb,
    train_small_bundle,
)

from littlevision._system import available_cores  # noqa: E402


def bad_requests(photo: bytes, size: int) -> list[tuple[str, str, bytes, str]]:
    """(name, path, body, content type) of requests that must each get a 4xx."""
    rng = random.Random(0)
    deep = b'{"image_base64": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    tensor = json.dumps(
        {
            "inputs": [
                {"name": "image", "shape": [1, size, size, 3], "datatype": "UINT8", "data": [1]}
            ]
        }
    ).encode()
    return [
        ("empty", "/v1/predict", b"", "image/jpeg"),
        (
            "random bytes",
            "/v1/predict",
            bytes(rng.getrandbits(8) for _ in range(4096)),
            "image/jpeg",
        ),
        ("truncated jpeg", "/v1/predict", photo[: len(photo) // 2], "image/jpeg"),
        ("text", "/v1/predict", b"hello\n" * 100, "image/png"),
        ("deep json", "/v1/predict", deep, "application/json"),
        ("bad base64", "/v1/predict", b'{"image_base64": "@@@"}', "application/json"),
        ("malformed json", "/v1/predict", b"{nope", "application/json"),
        ("png bomb", "/v1/predict", png_bomb(30000, 30000), "image/png"),
        ("multipart no boundary", "/v1/predict", b"--x\r\n", "multipart/form-data"),
        ("bad tensor", "/v2/models/{name}/infer", tensor, "application/json"),
        ("deep json feedback", "/v1/feedback", deep, "application/json"),
    ]


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def hang_up(port: int, photo: bytes) -> None:
    """A client that sends half its upload and disconnects."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(
            f"POST /v1/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(photo)}\r\n\r\n".encode()
            + photo[: len(photo) // 2]
        )
        time.sleep(0.2)


async def trickle_headers(port: int, seconds: float) -> float:
    """A client sending its headers one byte per 0.5 s; returns how long the server kept it."""
    reader, writer = await asyncio.open_connection(HOST, port)
    head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    t0 = time.perf_counter()
    try:
        for i in range(len(head)):
            if time.perf_counter() - t0 > seconds:
                break
            writer.write(head[i : i + 1])
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                    break
            except TimeoutError:
                pass
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return time.perf_counter() - t0


async def soak(server: Server, good: list[bytes], bad: list, rate: float, minutes: float) -> dict:
    """The open loop, minute by minute."""
    import httpx

    name = httpx.get(server.url + "/v1/model").json()["name"]
    bad = [(n, p.format(name=name), b, c) for n, p, b, c in bad]
    rng = random.Random(1)
    minute_rows = []
    totals: dict[str, int] = {}
    five: list[str] = []
    t_start = time.perf_counter()
    schedule = {"i": 0}
    current: dict = {}

    def new_minute() -> None:
        current.clear()
        current.update(latencies=[], statuses={}, t0=time.perf_counter())

    new_minute()

    async def worker(k: int) -> None:
        client = RawHttpClient(server.url)
        try:
            while True:
                i = schedule["i"]
                schedule["i"] += 1
                due = t_start + i / rate
                now = time.perf_counter()
                if due - t_start > minutes * 60 + 5:  # past the last sample: it sees full load
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                if rng.random() < 0.8:
                    kind, path, body, ctype = (
                        "good",
                        "/v1/predict",
                        good[i % len(good)],
                        "image/jpeg",
                    )
                else:
                    kind, path, body, ctype = bad[i % len(bad)]
                t0 = time.perf_counter()
                try:
                    status = await asyncio.wait_for(client.post(path, body, ctype), 60)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as e:
                    await client.close()
                    status = type(e).__name__
                key = f"{'good' if kind == 'good' else 'bad'} {status}"
                current["statuses"][key] = current["statuses"].get(key, 0) + 1
                totals[key] = totals.get(key, 0) + 1
                if isinstance(status, int) and status >= 500:
                    five.append(f"{kind} {path} {status}")
                if kind == "good" and status == 200:
                    current["latencies"].append(time.perf_counter() - t0)
        finally:
            await client.close()

    async def every_minute() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            minute = 0
            while minute < int(minutes):
                await asyncio.sleep(max(0.0, t_start + (minute + 1) * 60 - time.perf_counter()))
                minute += 1
                lat = current["latencies"]
                statuses = dict(current["statuses"])
                row = {
                    "minute": minute,
                    "rss_mb": round(server.rss_mb(), 1),
                    "fds": fd_count(server.proc.pid),
                    "good_p50_ms": round(pct(lat, 50) * 1000, 1),
                    "good_p99_ms": round(pct(lat, 99) * 1000, 1),
                    "answered_per_s": round(
                        sum(statuses.values()) / (time.perf_counter() - current["t0"]), 1
                    ),
                    "statuses": statuses,
                }
                new_minute()
                reload = await client.post("/v1/reload")
                row["reload"] = reload.status_code
                if reload.status_code >= 500:
                    five.append(f"reload {reload.status_code}")
                await asyncio.gather(
                    *(asyncio.to_thread(hang_up, server.port, good[0]) for _ in range(3)),
                    *(trickle_headers(server.port, 30) for _ in range(2)),
                )
                minute_rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)

    workers = [asyncio.create_task(worker(k)) for k in range(16)]
    await every_minute()
    await asyncio.wait_for(asyncio.gather(*workers), 120)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        metrics = (await client.get("/metrics")).text
    server_statuses: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("littlevision_requests_total{"):
            status = line.split('status="')[1].split('"')[0]
            server_statuses[status] = server_statuses.get(status, 0) + float(line.split()[-1])
    return {
        "minutes": minute_rows,
        "totals": totals,
        "5xx": five,
        "server_statuses": server_statuses,
    }


def growth(rows: list[dict], key: str) -> float:
    """Largest growth of ``key`` over its value at the end of the warm-up minute (the 2nd), %."""
    if len(rows) < 3:
        return float("nan")
    base = rows[1][key]
    return 100.0 * (max(r[key] for r in rows[2:]) - base) / base


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None, help="bundle to serve (default: train one)")
    p.add_argument("--minutes", type=float, default=20.0, help="length of the soak")
    p.add_argument("--load", type=float, default=0.5, help="share of the measured capacity")
    a = p.parse_args(argv)
    if not (DATASETS / "cats-vs-dogs").is_dir():
        raise SystemExit(f"benchmark data not found at {DATASETS / 'cats-vs-dogs'}")
    OUT.mkdir(exist_ok=True)
    run_dir = a.run or train_small_bundle(OUT / "serve-run")
    images = photos(64)
    from littlevision.bundle import Bundle

    size = Bundle.load(run_dir).image_size
    result: dict = {
        "run": str(run_dir),
        "cores": available_cores(),
        "load_average_start": os.getloadavg(),
        "minutes_asked": a.minutes,
    }
    server = Server(run_dir, "--watch-interval-s", "0", "--header-timeout-s", "5")
    try:
        server.wait_ready()
        asyncio.run(closed_loop(server.url, images, 4, 32, 30))  # warm-up
        cap = asyncio.run(closed_loop(server.url, images, 8, 100000, 20))
        result["capacity_img_s"] = cap["img_s"]
        rate = a.load * cap["img_s"]
        result["rate_per_s"] = rate
        result["rss_mb_start"] = server.rss_mb()
        result["fds_start"] = fd_count(server.proc.pid)
        result.update(
            asyncio.run(soak(server, images, bad_requests(images[0], size), rate, a.minutes))
        )
    finally:
        server.stop()
    rows = result["minutes"]
    result["rss_growth_pct"] = growth(rows, "rss_mb")
    result["fds_growth_pct"] = growth(rows, "fds")
    result["load_average_end"] = os.getloadavg()
    (OUT / "soak.json").write_text(json.dumps(result, indent=2, default=str))
    print(report(result))
    return 0


def report(r: dict) -> str:
    rows = r["minutes"]
    p99 = [m["good_p99_ms"] for m in rows]
    lines = [
        f"Soak: {len(rows)} minutes at {r['rate_per_s']:.1f} req/s "
        f"({r['rate_per_s'] / r['capacity_img_s']:.0%} of the measured capacity, "
        f"{r['capacity_img_s']:.1f} img/s), 80% photos / 20% bad requests, a reload, 3 hang-ups "
        f"and 2 header tricklers each minute; {r['cores']} cores, load average "
        f"{r['load_average_start'][0]:.1f} -> {r['load_average_end'][0]:.1f}.",
        "",
        "| minute | RSS MB | fds | good p50 ms | good p99 ms | answered/s | reload |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in rows:
        lines.append(
            f"| {m['minute']} | {m['rss_mb']} | {m['fds']} | {m['good_p50_ms']} | "
            f"{m['good_p99_ms']} | {m['answered_per_s']} | {m['reload']} |"
        )
    lines += [
        "",
        f"- largest growth over the warm-up minute: RSS {r['rss_growth_pct']:.1f}%, "
        f"fds {r['fds_growth_pct']:.1f}%",
        f"- answers 5xx: {len(r['5xx'])}; client-side totals: {r['totals']}",
        f"- server-side statuses (/metrics): {r['server_statuses']}",
        f"- good p99 per minute: min {min(p99, default=0):.0f} ms, max {max(p99, default=0):.0f} ms",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
