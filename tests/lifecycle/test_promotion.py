"""Promotion and rollback are atomic: a crash at any step leaves a run that loads and serves one
complete version, and a running service switches without failing a request."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from littlevision._io import file_sha256
from littlevision.bundle import Bundle
from littlevision.lifecycle import rollback
from littlevision.lifecycle.layout import current_version, ensure_versioned
from littlevision.serving.model_store import load_model


class Killed(BaseException):
    """Stands for SIGKILL at one file-system step (a BaseException: nothing catches it)."""


def _crash_at(monkeypatch, k: int) -> list[int]:
    """Make the k-th os.replace / os.symlink raise Killed instead of happening."""
    count = [0]
    for name in ("replace", "symlink"):
        real = getattr(os, name)

        def hooked(*args, _real=real, **kwargs):
            count[0] += 1
            if count[0] == k:
                raise Killed
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, hooked)
    return count


def _assert_one_complete_version(run: Path) -> str:
    """The run loads, its files are one version's (the card's hash is the model's), it serves."""
    bundle = Bundle.load(run)
    assert bundle.card["model_version"] == file_sha256(bundle.onnx_path)[:12]
    assert file_sha256(run / "model.onnx") == file_sha256(bundle.onnx_path)
    assert file_sha256(run / "labels.json") == file_sha256(bundle.files_dir / "labels.json")
    model = load_model(run, threads=1, warm_batch=1)
    assert model.scoring is not None  # the novelty score came with its own model
    return bundle.card["model_version"]


def test_a_crash_at_any_step_of_versioning_leaves_the_run_serving(tiny_run, tmp_path, monkeypatch):
    original = Bundle.load(tiny_run).card["model_version"]
    k = 1
    while True:
        run = Path(shutil.copytree(tiny_run, tmp_path / f"run{k}"))
        count = _crash_at(monkeypatch, k)
        try:
            ensure_versioned(run)
            crashed = False
        except Killed:
            crashed = True
        monkeypatch.undo()
        assert _assert_one_complete_version(run) == original, f"crash at step {k}"
        assert ensure_versioned(run) == 1  # the next run finishes the job
        assert _assert_one_complete_version(run) == original
        if not crashed:
            break
        k += 1
    assert k > 10 and count[0] == k - 1  # every step was tried


def test_a_crash_at_any_step_of_a_rollback_leaves_one_version(retrained, tmp_path, monkeypatch):
    source, _ = retrained
    hashes = {n: Bundle.load(source / "versions" / str(n)).card["model_version"] for n in (1, 2)}
    for k in range(1, 6):
        run = Path(shutil.copytree(source, tmp_path / f"run{k}", symlinks=True))
        _crash_at(monkeypatch, k)
        try:
            rollback(run)
        except Killed:
            pass
        monkeypatch.undo()
        served = _assert_one_complete_version(run)
        assert served == hashes[current_version(run)]


@pytest.mark.slow
def test_a_killed_retrain_leaves_the_served_version_untouched(retrained, tmp_path):
    source, _ = retrained
    run = Path(shutil.copytree(source, tmp_path / "run", symlinks=True))
    served = file_sha256(run / "model.onnx")
    for delay in (3.0, 8.0, 15.0):
        p = subprocess.Popen(
            [sys.executable, "-m", "littlevision.cli", "retrain", str(run), "-q", "--force"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        now = _assert_one_complete_version(run)
        if file_sha256(run / "model.onnx") != served:  # it finished before the kill
            served = file_sha256(run / "model.onnx")
        assert now == Bundle.load(run).card["model_version"]


def _load(url: str, photo: bytes, stop: threading.Event, seen: list, failures: list) -> None:
    with httpx.Client(timeout=30) as client:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = client.post(
                    url + "/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}
                )
            except httpx.HTTPError as e:
                failures.append(repr(e))
                continue
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
            else:
                seen.append((time.monotonic(), r.json()["model"]["version"]))


def test_a_running_service_switches_version_without_failing_a_request(
    retrained, tmp_path, cats_dogs_dir
):
    from tests.serving.server_process import Server

    photo = next((cats_dogs_dir / "validation" / "cats").iterdir()).read_bytes()
    source, _ = retrained
    run = Path(shutil.copytree(source, tmp_path / "run", symlinks=True))
    v1 = Bundle.load(run / "versions" / "1").card["model_version"]
    v2 = Bundle.load(run).card["model_version"]
    server = Server(run, "--watch-interval-s", "0.5", "--no-access-log", "--log-level", "warning")
    try:
        server.wait_ready(60)
        stop, seen, failures = threading.Event(), [], []
        workers = [
            threading.Thread(target=_load, args=(server.url, photo, stop, seen, failures))
            for _ in range(4)
        ]
        for w in workers:
            w.start()
        try:
            for target, expected in ((None, v1), (2, v2)):
                time.sleep(1.0)
                rollback(run, to=target)
                switched = time.monotonic()
                while time.monotonic() - switched < 10:
                    if seen and seen[-1][1] == expected:
                        break
                    time.sleep(0.1)
                assert seen[-1][1] == expected, f"still {seen[-1][1]} 10 s after the switch"
        finally:
            stop.set()
            for w in workers:
                w.join(60)
        assert not failures, failures[:3]
        assert {v for _, v in seen} == {v1, v2} and len(seen) > 20
    finally:
        server.stop()
