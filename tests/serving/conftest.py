"""Fixtures for the service: a tiny real bundle, real photos, and a corpus of bad uploads.

The bundle is built here with ``onnx.helper`` and follows the ONNX contract exactly (uint8
[N, 64, 64, 3] in, softmax over 2 classes out), so the tests run in seconds and need neither
TensorFlow nor a trained model. To serve a bundle trained by the core instead, make the
``bundle_source`` fixture return that run folder (or set LITTLEVISION_SERVE_TEST_RUN):
everything else takes the bundle from there.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from littlevision._io import file_sha256, write_json

IMAGE_SIZE = 64
LABELS = ("cats", "dogs")


def make_onnx(path: Path, weights: np.ndarray, image_size: int = IMAGE_SIZE) -> None:
    """A real classifier graph: uint8 NHWC -> mean colour -> linear -> softmax.

    Args:
        path: Where to write model.onnx.
        weights: float32 [3, C]: how the mean R, G, B (0-255) vote for each class.
        image_size: S of the [N, S, S, 3] input.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_classes = weights.shape[1]
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean_rgb"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["mean_rgb", "W"], ["logits_raw"]),
        helper.make_node("Add", ["logits_raw", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.UINT8, ["N", image_size, image_size, 3]
            )
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes])],
        initializer=[
            numpy_helper.from_array(np.asarray(weights, np.float32) / 255.0, "W"),
            numpy_helper.from_array(np.zeros(n_classes, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def make_bundle(
    run_dir: Path,
    weights: np.ndarray | None = None,
    labels: tuple[str, ...] = LABELS,
    image_size: int = IMAGE_SIZE,
    name: str = "tiny-pets",
) -> Path:
    """Write (or overwrite) a complete bundle folder; returns it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if weights is None:  # redder images lean "cats", bluer ones "dogs": a real, if silly, model
        weights = np.array([[4.0, -4.0], [0.0, 0.0], [-4.0, 4.0]], np.float32)[:, : len(labels)]
    onnx_path = run_dir / "model.onnx"
    tmp = run_dir / ".model.onnx.tmp"
    make_onnx(tmp, weights, image_size)
    tmp.replace(onnx_path)  # the way a trainer should write it: atomically
    write_json(run_dir / "labels.json", list(labels))
    write_json(
        run_dir / "card.json",
        {
            "name": name,
            "image_size": image_size,
            "backbone": "tiny-test-graph",
            "model_version": file_sha256(onnx_path)[:12],
            "cost": {"backbone": "tiny-test-graph", "image_size": image_size, "ms_per_image": 0.1},
        },
    )
    write_json(run_dir / "metrics.json", {"accuracy": 0.5})
    return run_dir


@pytest.fixture(scope="session")
def bundle_source(tmp_path_factory) -> Path:
    """The bundle every serving test copies (tests read its name, labels and size from it).

    LITTLEVISION_SERVE_TEST_RUN=RUN serves a trained run instead (its labels must include
    ``cats`` and ``dogs``, as a cats-vs-dogs run's do); a session fixture that trains one can
    replace this body the same way.
    """
    trained = os.environ.get("LITTLEVISION_SERVE_TEST_RUN")
    if trained:
        return Path(trained)
    return make_bundle(tmp_path_factory.mktemp("bundle") / "run")


@pytest.fixture(scope="session")
def served(bundle_source):
    """The served bundle's facts (name, labels, image_size): tests compare with these, not
    with constants, so swapping ``bundle_source`` for a trained run needs no other change."""
    from littlevision.bundle import Bundle

    return Bundle.load(bundle_source)


@pytest.fixture
def run_dir(bundle_source, tmp_path) -> Path:
    """A private copy of the bundle (tests reload, overwrite and add feedback to it)."""
    return Path(shutil.copytree(bundle_source, tmp_path / "run"))


@pytest.fixture(scope="session")
def photos(cats_dogs_dir) -> dict[str, bytes]:
    """Real JPEG photos by name: three cats and three dogs."""
    out = {}
    for cls in ("cats", "dogs"):
        for f in sorted((cats_dogs_dir / "validation" / cls).iterdir(), key=lambda p: p.name)[:3]:
            out[f.name] = f.read_bytes()
    return out


@pytest.fixture(scope="session")
def photo(photos) -> bytes:
    return next(iter(photos.values()))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with almost no pixel data: a 'bomb'."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def odd_images(photo) -> dict[str, tuple[bytes, str]]:
    """A real photo re-encoded in odd-but-valid formats and modes: (bytes, content type)."""
    from PIL import Image

    base = Image.open(io.BytesIO(photo))
    base.load()
    out = {}

    def save(name: str, img, fmt: str, ctype: str, **kw) -> None:
        buffer = io.BytesIO()
        img.save(buffer, fmt, **kw)
        out[name] = (buffer.getvalue(), ctype)

    save("png_rgba", base.convert("RGBA"), "PNG", "image/png")
    save("png_gray", base.convert("L"), "PNG", "image/png")
    save(
        "png_16bit",
        Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257),
        "PNG",
        "image/png",
    )
    save("gif_palette", base.convert("P"), "GIF", "image/gif")
    save("jpeg_cmyk", base.convert("CMYK"), "JPEG", "image/jpeg")
    save("webp", base, "WEBP", "image/webp")
    save("bmp", base, "BMP", "image/bmp")
    save("tiff", base, "TIFF", "image/tiff")
    save("tiny_1x1", base.resize((1, 1)), "PNG", "image/png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated
    save("jpeg_exif_rotated", base, "JPEG", "image/jpeg", exif=exif)
    out["png_named_jpeg"] = (out["png_rgba"][0], "image/jpeg")  # content decides, not the label
    return out


@pytest.fixture(scope="session")
def bad_images(photo) -> dict[str, tuple[bytes, int, str]]:
    """Uploads that must each get a clear 4xx: name -> (bytes, expected status, error code)."""
    rng = np.random.default_rng(0)
    return {
        "empty": (b"", 400, "empty"),
        "random_bytes": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), 422, "not_image"),
        "text": (b"hello, I am not an image\n" * 10, 422, "not_image"),
        "truncated_jpeg": (photo[: len(photo) // 2], 422, "truncated"),
        "jpeg_header_only": (photo[:200], 422, "truncated"),
        "png_bomb": (_png_header_only(30000, 30000), 413, "too_large"),
        "html": (b"<html><script>alert(1)</script></html>", 422, "not_image"),
    }


@pytest.fixture
def make_client(run_dir):
    """Start apps on ``run_dir`` (lifespan included) with given settings; closed after the test.

    ``raise_server_exceptions=False`` so a 500 arrives as a response the test can see, as a
    client would, instead of as an exception.
    """
    from fastapi.testclient import TestClient

    from littlevision.serving import ServeSettings, create_app

    clients = []

    def make(settings: ServeSettings | None = None, **overrides) -> TestClient:
        settings = settings or ServeSettings(**{"watch_interval_s": 0, **overrides})
        client = TestClient(create_app(run_dir, settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    """A client of the service on the tiny bundle, default settings, no folder watcher."""
    return make_client()


@pytest.fixture
def server(run_dir):
    """Start real service processes on ``run_dir`` (``server("--max-queue", "2")``); killed after."""
    from .server_process import Server

    started = []

    def start(*args: str, env: dict | None = None, ready: bool = True, entry=None) -> Server:
        s = Server(run_dir, *args, env=env, **({"entry": entry} if entry else {}))
        started.append(s)
        if ready:
            s.wait_ready()
        return s

    yield start
    for s in started:
        s.stop()
