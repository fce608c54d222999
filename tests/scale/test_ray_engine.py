"""Batch prediction and embedding on a local Ray give the local path's results."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from littlevision.bundle import Bundle
from littlevision.inference import Predictor

pytestmark = pytest.mark.slow  # starts Ray (~15 s on 2 busy cores) and its actors


@pytest.fixture(scope="module")
def paths(small_folder, tmp_path_factory):
    """40 real photos with one broken file in the middle."""
    files = sorted(small_folder.rglob("*.jpg"))
    broken = tmp_path_factory.mktemp("broken") / "broken.jpg"
    broken.write_bytes(b"this is not a photo")
    return files[:13] + [broken] + files[13:]


def test_predict_files_matches_the_local_predictor(ray_local, tiny_run, paths, tmp_path):
    from littlevision.scale import predict_files

    local = Predictor.from_bundle(tiny_run).predict_paths(paths)
    labels = Bundle.load(tiny_run).labels
    summary = predict_files(tiny_run, paths, tmp_path / "out.csv", batch_size=8)

    with open(summary.output, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ["path", "label", "score", *labels]
    assert [r[0] for r in rows] == [str(p) for p in local.paths]  # same rows, same order
    assert [r[1] for r in rows] == local.predicted
    probs = np.array([[float(x) for x in r[3:]] for r in rows])
    np.testing.assert_allclose(probs, local.probabilities, atol=1e-5)
    np.testing.assert_allclose([float(r[2]) for r in rows], local.scores, atol=1e-5)
    assert summary.n_files == len(paths) and summary.n_predicted == len(local.paths)
    assert [str(e) for e in summary.failures] == [str(e) for e in local.failures]
    assert summary.failures[0].reason == "not_image"
    assert not (tmp_path / "out.csv.tmp").exists()

    parquet = predict_files(tiny_run, paths, tmp_path / "out.parquet", num_actors=1)
    import pyarrow.parquet as pq

    table = pq.read_table(parquet.output)
    assert table.column_names == header
    assert table.column("label").to_pylist() == local.predicted
    np.testing.assert_allclose(
        np.stack([table.column(c).to_numpy() for c in labels], 1), local.probabilities, atol=1e-5
    )


def test_embed_paths_ray_fills_the_embedders_cache(ray_local, cats_dogs_dir, tmp_path):
    from littlevision.features import Embedder, content_hash
    from littlevision.scale import embed_paths_ray

    # Validation photos copied under new names: never embedded by the other tests' training.
    files = []
    for cls in ("cats", "dogs"):
        for src in sorted((cats_dogs_dir / "validation" / cls).iterdir())[:4]:
            files.append(shutil.copy(src, tmp_path / f"{cls}-{src.name}"))
    files.insert(3, tmp_path / "missing.jpg")
    embedder = Embedder("lite0")
    for f in files[:3] + files[4:]:
        for variant in ("", "-flip"):
            embedder._entry(content_hash(f), variant).unlink(missing_ok=True)

    for flip in (False, True):
        local = Embedder("lite0", use_cache=False).embed_paths(files, flip=flip)
        remote = embed_paths_ray({"backbone": "lite0"}, files, flip=flip, batch_size=4)
        assert remote.n_cached == 0
        np.testing.assert_array_equal(remote.ok_indices, local.ok_indices)
        np.testing.assert_allclose(remote.features, local.features, atol=1e-5)
        assert remote.hashes == local.hashes
        assert [e.reason for e in remote.failures] == [e.reason for e in local.failures]
        cached = Embedder("lite0").embed_paths(files, flip=flip)
        assert cached.n_cached == len(local.ok_indices)  # a local run now embeds nothing
        np.testing.assert_allclose(cached.features, local.features, atol=1e-5)


def test_predict_files_reads_uris_with_pyarrow(ray_local, tiny_run, paths, tmp_path):
    """``scheme://`` paths (s3://, gs://... here file://) are read on the workers by pyarrow."""
    from littlevision.scale import predict_files

    files = paths[:3] + [paths[13]]  # three photos and the broken file
    uris = [p.resolve().as_uri() for p in files]
    local = Predictor.from_bundle(tiny_run).predict_paths(files)
    summary = predict_files(tiny_run, uris, tmp_path / "uris.csv", num_actors=1)
    with open(summary.output, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == uris[:3]
    assert [r["label"] for r in rows] == local.predicted
    assert [e.reason for e in summary.failures] == ["not_image"]
