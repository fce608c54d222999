"""Review benchmark (issue 16): label-next ranking, and the page under a scripted person.

Run with ``make bench BENCH=review`` or ``.venv/bin/python benchmarks/bench_review.py [parts]``
where parts are any of ``next page planted`` (default: all). Prints Markdown tables and writes
``.bench/review.json``.

(a) ``next``: cats-vs-dogs, 3 seeds. 50 labelled photos per class from train/, the rest of
    train/ (1,900) is the unlabelled pool, validation/ (800) is held out. A logistic regression
    on the 100 labelled embeddings ranks the pool (the page's order,
    :func:`~littlevision.review.ranking.rank_label_next`); the first 100 are labelled (their
    true labels) and a new model is fitted on the 200. Compared with 100 random picks, and with
    uncertainty alone and diversity alone. Validation accuracy and log-loss.
(b) ``page``: a copy of all 2,800 cats-vs-dogs photos; ``littlevision review COPY --quick`` in a
    real process; headless chromium opens the "All images" queue (2,800 thumbnails, lazy):
    cold (thumbnails made on demand) and warm (thumbnail cache filled, fresh browser profile),
    time from navigation to every visible thumbnail decoded.
(c) ``planted``: the doctor benchmark's planted-problem set; the browser answers every finding
    by keyboard (Enter: accept the suggested label, else keep; ``q`` for errors), then keeps
    images in "All images" until 100 answers; p95 of key-press-to-page-updated per action.
    Then ``doctor`` again: how many reviewed findings come back (target 0); then
    ``doctor --restore``: every file byte-identical (target: all).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
OUT = REPO / ".bench"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
C_HEAD = 100.0  # as littlevision.review.queues.fit_probabilities
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- (a) label next ------------------------------------------------------------------------------


def label_next_benchmark(seeds=(0, 1, 2), n_labelled=50, n_pick=100) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from littlevision.features import Embedder
    from littlevision.review.ranking import STRATEGIES, rank_label_next

    cvd = DATASETS / "cats-vs-dogs"
    classes = ["cats", "dogs"]
    files = {
        s: [(p, i) for i, c in enumerate(classes) for p in sorted((cvd / s / c).iterdir())]
        for s in ("train", "validation")
    }
    emb = Embedder("lite0")
    t = time.perf_counter()
    feats = {}
    for s, items in files.items():
        e = emb.embed_paths([p for p, _ in items])
        assert len(e.ok_indices) == len(items), "every photo decodes"
        feats[s] = e.features / np.linalg.norm(e.features, axis=1, keepdims=True)
    embed_s = time.perf_counter() - t
    y_tr = np.array([y for _, y in files["train"]])
    y_va = np.array([y for _, y in files["validation"]])

    def fit_eval(idx: np.ndarray) -> tuple[float, float]:
        m = LogisticRegression(C=C_HEAD, max_iter=3000).fit(feats["train"][idx], y_tr[idx])
        p = m.predict_proba(feats["validation"])
        return float((p.argmax(1) == y_va).mean()), float(log_loss(y_va, p))

    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        labelled = np.concatenate(
            [rng.choice(np.flatnonzero(y_tr == c), n_labelled, replace=False) for c in (0, 1)]
        )
        pool = np.setdiff1d(np.arange(len(y_tr)), labelled)
        base = LogisticRegression(C=C_HEAD, max_iter=3000).fit(
            feats["train"][labelled], y_tr[labelled]
        )
        probs = base.predict_proba(feats["train"][pool])
        row = {"seed": seed, "start": fit_eval(labelled)}
        for strategy in STRATEGIES:
            t = time.perf_counter()
            order = rank_label_next(
                probs, feats["train"][pool], feats["train"][labelled], strategy=strategy, seed=seed
            )
            rank_s = time.perf_counter() - t
            chosen = pool[order[:n_pick]]
            acc, ll = fit_eval(np.concatenate([labelled, chosen]))
            row[strategy] = (acc, ll)
            row[f"{strategy}_rank_s"] = rank_s
            row[f"{strategy}_errors_in_pick"] = int(
                (probs[order[:n_pick]].argmax(1) != y_tr[chosen]).sum()
            )
        rows.append(row)
    ceiling = fit_eval(np.arange(len(y_tr)))
    return {"rows": rows, "ceiling_all_2000": ceiling, "embed_seconds": embed_s, "load": load()}


# -- a real review process and a browser ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_review(args: list[str], env: dict) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "littlevision.review.cli", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if line.startswith("review: http"):
            break
    else:
        raise RuntimeError(f"review exited with {proc.wait()}")
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/", time.perf_counter() - t


def browser_context(p, profile: Path):
    return p.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=FLAGS,
        viewport={"width": 1280, "height": 800},
        bypass_csp=True,  # the harness's own wait expressions, not the page's scripts
    )


_VISIBLE_DONE = """() => {
  const strip = Array.from(document.querySelectorAll('#strip button img')).slice(0, 120);
  const imgs = strip.concat(Array.from(document.querySelectorAll('#detail img')));
  const seen = imgs.filter(i => { const r = i.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight && r.width > 0; });
  return seen.length > 0 && seen.every(i => i.complete && i.naturalWidth > 0);
}"""


def open_page(p, url: str, profile: Path) -> dict:
    ctx = browser_context(p, profile)
    try:
        page = ctx.new_page()
        t = time.perf_counter()
        page.goto(url + "#all")
        page.wait_for_selector("body[data-ready='1']", timeout=60000)
        ready = time.perf_counter() - t
        page.wait_for_function(_VISIBLE_DONE, timeout=120000, polling="raf")
        shown = time.perf_counter() - t
        n = page.locator("#strip button").count()
        return {"ready_s": ready, "thumbnails_shown_s": shown, "items": n}
    finally:
        ctx.close()


def page_benchmark(env: dict) -> dict:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="lv-review-page-"))
    try:
        data = tmp / "cats-vs-dogs"
        shutil.copytree(DATASETS / "cats-vs-dogs", data)
        proc, url, start_s = start_review([str(data), "--quick"], env)
        try:
            with sync_playwright() as p:
                cold = open_page(p, url, tmp / "profile-cold")
                warm = [open_page(p, url, tmp / f"profile-warm-{k}") for k in range(3)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return {
            "server_start_s": start_s,
            "cold": cold,
            "warm": warm,
            "warm_median_s": float(np.median([w["thumbnails_shown_s"] for w in warm])),
            "load": load(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- (c) the planted-problem set, reviewed by keyboard -------------------------------------------


def tree(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def planted_benchmark(env: dict, n_actions: int = 100) -> dict:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_doctor import plant

    tmp = Path(tempfile.mkdtemp(prefix="lv-review-planted-"))
    try:
        data = tmp / "pets"
        plant(data)
        before = tree(data)
        proc, url, start_s = start_review([str(data)], env)
        try:
            with sync_playwright() as p:
                ctx = browser_context(p, tmp / "profile")
                page = ctx.new_page()
                page.goto(url + "#findings")
                page.wait_for_selector("body[data-ready='1']", timeout=60000)
                state = page.evaluate("S.data")
                findings = state["queues"][0]["items"]
                reviewed, skipped = [], []
                t0 = time.perf_counter()
                for _ in range(len(findings)):
                    it = page.evaluate("item()")
                    if it is None or it["done"]:
                        break
                    n = len(page.evaluate("window.reviewTimings"))
                    page.evaluate("status('', false)")
                    page.keyboard.press("q" if it["severity"] == "error" else "Enter")
                    page.wait_for_function(
                        f"window.reviewTimings.length > {n} || "
                        "document.querySelector('#status').className === 'error'",
                        timeout=30000,
                    )
                    if len(page.evaluate("window.reviewTimings")) > n:
                        reviewed.append(it)
                    else:  # its file was moved by an earlier answer (a twin): say so, go on
                        skipped.append(page.inner_text("#status"))
                        page.evaluate("select(nextOpen())")
                findings_s = time.perf_counter() - t0
                page.keyboard.press("Tab")  # on to 'All images': keep until n_actions answers
                page.wait_for_function("queue().name === 'all'")
                while len(page.evaluate("window.reviewTimings")) < n_actions:
                    n = len(page.evaluate("window.reviewTimings"))
                    page.keyboard.press("k")
                    page.wait_for_function(f"window.reviewTimings.length > {n}", timeout=15000)
                total_s = time.perf_counter() - t0
                timings = page.evaluate("window.reviewTimings")
                split = np.array(page.evaluate("window.reviewSplit"), dtype=float)
                status = page.inner_text("#status")
                final = page.evaluate("S.data")
                ctx.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        env_q = {**env}
        out = subprocess.run(
            [sys.executable, "-m", "littlevision.cli", "doctor", str(data), "--json"],
            capture_output=True,
            text=True,
            env=env_q,
        )
        report = json.loads(out.stdout)
        # A reviewed finding is back when the new report has a finding of the same check
        # naming one of its files where that file is now (a relabelled file has a new path).
        now = {it["key"]: it for q in final["queues"] for it in q["items"]}
        new_files: dict = {}
        for f in report["findings"]:
            for path in f["files"]:
                new_files.setdefault((f["check"], path), []).append(f["message"])
        back = []
        for it in reviewed:
            paths = [f["now"] for f in now[it["key"]]["files"] if f["now_where"] == "data"]
            hits = [m for p in paths for m in new_files.get((it["check"], p), [])]
            if hits:
                back.append({"was": it["title"], "now": hits[0]})
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "littlevision.cli", "doctor", "--restore", f"{data}.quarantine"],
            check=True,
            capture_output=True,
            env=env,
        )
        restore_s = time.perf_counter() - t
        after = tree(data)
        return {
            "findings_answered": len(reviewed),
            "findings_skipped": skipped,
            "findings_seconds": findings_s,
            "actions": len(timings),
            "actions_seconds": total_s,
            "p50_ms": float(np.percentile(timings, 50)),
            "p95_ms": float(np.percentile(timings, 95)),
            "max_ms": float(np.max(timings)),
            "server_p50_ms": float(np.percentile(split[:, 0], 50)),
            "server_p95_ms": float(np.percentile(split[:, 0], 95)),
            "answer_received_p95_ms": float(np.percentile(split[:, 1], 95)),
            "reported_again": len(back),
            "reported_again_examples": back[:5],
            "findings_after": report["summary"]["n_findings"],
            "reviewed_hidden": report["summary"].get("reviewed"),
            "restore_seconds": restore_s,
            "files": len(before),
            "byte_identical": after == before,
            "last_status": status,
            "load": load(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(Path(f"{tmp}/pets.quarantine"), ignore_errors=True)


# -- report --------------------------------------------------------------------------------------


def print_tables(results: dict) -> None:
    if "next" in results:
        r = results["next"]
        print("\n### Label next: 100 more labels on top of 50 per class (cats-vs-dogs)\n")
        print("| seed | start (100) | page order | random | uncertainty only | diversity only |")
        print("|---|---|---|---|---|---|")
        for row in r["rows"]:
            cells = [f"{row['start'][0]:.2%}"] + [
                f"{row[s][0]:.2%} ({row[s][1]:.4f})"
                for s in ("combined", "random", "uncertainty", "diversity")
            ]
            print(f"| {row['seed']} | " + " | ".join(cells) + " |")
        mean = {
            s: np.mean([row[s][0] for row in r["rows"]])
            for s in ("combined", "random", "uncertainty", "diversity")
        }
        print(
            "| mean | | "
            + " | ".join(
                f"{mean[s]:.2%}" for s in ("combined", "random", "uncertainty", "diversity")
            )
            + " |"
        )
        print(
            f"\nValidation accuracy (log-loss) on the 800 validation photos; all 2,000 labelled: "
            f"{r['ceiling_all_2000'][0]:.2%}. {r['load']}."
        )
    if "page" in results:
        r = results["page"]
        print("\n### The page on 2,800 photos\n")
        print(f"- server start (doctor --quick, queues): {r['server_start_s']:.1f} s")
        print(
            f"- cold thumbnails: ready {r['cold']['ready_s']:.2f} s, visible thumbnails "
            f"{r['cold']['thumbnails_shown_s']:.2f} s ({r['cold']['items']} items)"
        )
        print(
            "- warm thumbnail cache, fresh browser: "
            + ", ".join(f"{w['thumbnails_shown_s']:.2f} s" for w in r["warm"])
            + f" (median {r['warm_median_s']:.2f} s); {r['load']}"
        )
    if "planted" in results:
        r = results["planted"]
        print("\n### The planted-problem set, answered by keyboard\n")
        print(
            f"- {r['findings_answered']} findings answered ({len(r['findings_skipped'])} skipped: "
            f"their file had moved with a twin) in {r['findings_seconds']:.1f} s; "
            f"{r['actions']} answers in {r['actions_seconds']:.1f} s"
        )
        print(
            f"- per answer, key press to page updated: p50 {r['p50_ms']:.0f} ms, "
            f"p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms; of which the server's work "
            f"p50 {r['server_p50_ms']:.0f} ms, p95 {r['server_p95_ms']:.0f} ms (fsyncs), and "
            f"the answer back in the page p95 {r['answer_received_p95_ms']:.0f} ms"
        )
        print(
            f"- doctor again: {r['reported_again']} reviewed findings reported again "
            f"({r['reviewed_hidden']} hidden as kept; {r['findings_after']} findings left)"
        )
        print(
            f"- doctor --restore: {r['files']} files, byte-identical: {r['byte_identical']} "
            f"({r['restore_seconds']:.1f} s); {r['load']}"
        )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="*", default=["next", "page", "planted"])
    args = ap.parse_args(argv)
    if not (DATASETS / "cats-vs-dogs").is_dir():
        print(f"skipped: {DATASETS / 'cats-vs-dogs'} is absent")
        return 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    results: dict = {}
    OUT.mkdir(exist_ok=True)
    if "next" in args.parts:
        results["next"] = label_next_benchmark()
    if "page" in args.parts:
        results["page"] = page_benchmark(env)
    if "planted" in args.parts:
        results["planted"] = planted_benchmark(env)
    (OUT / "review.json").write_text(json.dumps(results, indent=2, default=str))
    print_tables(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
