"""Prediction with ONNX Runtime: the streaming path (one worker per core) against the plain one."""

import shutil
import threading

import numpy as np
import pytest

from littlevision.data.decode import decode_many, map_decoded
from littlevision.inference import OnnxModel, Predictor


@pytest.fixture
def mixed_files(small_folder, tmp_path):
    """Ten real photos with two broken files among them, in a known order."""
    photos = sorted(small_folder.rglob("*.jpg"))[:10]
    paths = [shutil.copy(p, tmp_path / f"{i:02d}{p.suffix}") for i, p in enumerate(photos)]
    (tmp_path / "broken.jpg").write_bytes(photos[0].read_bytes()[:500])
    (tmp_path / "notes.txt").write_text("not an image")
    paths.insert(3, tmp_path / "broken.jpg")
    paths.insert(8, tmp_path / "notes.txt")
    return [tmp_path / p for p in paths]


def test_map_decoded_keeps_order_and_reports_failures(mixed_files):
    seen_threads = set()

    def fn(images):
        seen_threads.add(threading.get_ident())
        return images.reshape(len(images), -1).sum(axis=1)

    results = list(map_decoded(mixed_files, 64, fn, batch_size=3, workers=2))
    assert len(results) == 4  # 12 paths in batches of 3
    ok = np.concatenate([r.ok_indices for r, _ in results])
    assert ok.tolist() == [i for i in range(12) if i not in (3, 8)]
    failures = [f for r, _ in results for f in r.failures]
    assert [f.path.name for f in failures] == ["broken.jpg", "notes.txt"]
    assert [f.reason for f in failures] == ["truncated", "not_image"]
    sums = np.concatenate([out for _, out in results])
    expected = decode_many([mixed_files[i] for i in ok], 64).images
    np.testing.assert_array_equal(sums, expected.reshape(len(expected), -1).sum(axis=1))
    assert threading.get_ident() not in seen_threads  # the work ran on the pool


def test_map_decoded_never_calls_fn_on_an_empty_batch(tmp_path):
    bad = tmp_path / "a.jpg"
    bad.write_bytes(b"")
    results = list(map_decoded([bad], 32, lambda images: pytest.fail("called"), workers=2))
    assert len(results) == 1 and results[0][1] is None and results[0][0].failures


def test_predict_paths_matches_predict_array(tiny_run, mixed_files):
    predictor = Predictor.from_bundle(tiny_run, threads=2)
    preds = predictor.predict_paths(mixed_files, batch_size=4)
    assert [p.name for p in preds.paths] == [
        p.name for i, p in enumerate(mixed_files) if i not in (3, 8)
    ]
    assert len(preds.failures) == 2
    images = decode_many(preds.paths, predictor.image_size).images
    np.testing.assert_allclose(preds.probabilities, predictor.predict_array(images), atol=1e-5)
    np.testing.assert_allclose(preds.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_sessions_sleep_instead_of_spinning(tiny_run):
    """Spinning ONNX Runtime threads starve decoding and the service's event loop on 2 cores."""
    model = OnnxModel(tiny_run / "model.onnx", threads=2)
    for session in (model.session, model.stream_session):
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert model.stream_session.get_session_options().intra_op_num_threads == 1
    assert model.session.get_session_options().intra_op_num_threads == 2


def test_overlapping_calls_share_the_cores(tiny_run):
    """A call alone gets every core; a call beside it runs on one (the same answers either way)."""
    model = OnnxModel(tiny_run / "model.onnx", threads=2)
    used = []
    entered = threading.Barrier(2)

    class Recording:
        def __init__(self, session, name, wait):
            self.session, self.name, self.wait = session, name, wait

        def run(self, outputs, feed):
            used.append(self.name)
            if self.wait:
                entered.wait(timeout=10)  # hold the first call until the second has started
            return self.session.run(outputs, feed)

    all_cores, one_core = model.session, model.stream_session
    model._session = Recording(all_cores, "all cores", wait=True)
    model._stream_session = Recording(one_core, "one core", wait=False)
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    first = threading.Thread(target=model.run, args=(x,))
    first.start()
    while not used:
        pass
    second = model.run(x)
    entered.wait(timeout=10)
    first.join()
    assert used == ["all cores", "one core"]
    model._session, model._stream_session = all_cores, one_core
    np.testing.assert_allclose(second, model.run(x), atol=1e-5)
