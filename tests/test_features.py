"""The embedding cache: computed once per image content, reused across runs, honest about failures."""

from __future__ import annotations

import shutil

import numpy as np

from littlevision.features import Embedder, content_hash


def test_second_pass_is_served_from_the_cache(small_folder, tmp_path):
    # bytes after a JPEG's end marker change the file's content hash, not its pixels:
    # six photos no other test has embedded yet
    files = []
    for i, src in enumerate(sorted(small_folder.rglob("*.jpg"))[:6]):
        dst = tmp_path / f"fresh{i}.jpg"
        dst.write_bytes(src.read_bytes() + b"test_features")
        files.append(dst)
    first = Embedder("lite0").embed_paths(files)
    assert first.n_cached == 0 and first.features.shape == (6, 1280)
    second = Embedder("lite0").embed_paths(files)
    assert second.n_cached == 6
    np.testing.assert_array_equal(first.features, second.features)


def test_cache_is_keyed_by_content_not_name(small_folder, tmp_path):
    src = small_folder / "cats" / "cat.1.jpg"
    renamed = tmp_path / "renamed.jpg"
    shutil.copy(src, renamed)
    emb = Embedder("lite0")
    a = emb.embed_paths([src])
    b = emb.embed_paths([renamed])
    assert b.n_cached == 1 and content_hash(src) == content_hash(renamed)
    np.testing.assert_array_equal(a.features, b.features)


def test_flipped_features_differ_and_are_cached_separately(small_folder):
    files = sorted(small_folder.rglob("*.jpg"))[:2]
    emb = Embedder("lite0")
    plain = emb.embed_paths(files)
    flipped = emb.embed_paths(files, flip=True)
    assert not np.allclose(plain.features, flipped.features)
    # mirrored photos of the same animal stay close in feature space
    cos = (plain.features * flipped.features).sum(1) / (
        np.linalg.norm(plain.features, axis=1) * np.linalg.norm(flipped.features, axis=1)
    )
    assert (cos > 0.8).all()


def test_unreadable_and_missing_files_are_reported_not_fatal(small_folder, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    files = [small_folder / "dogs" / "dog.1.jpg", bad, tmp_path / "missing.jpg"]
    result = Embedder("lite0").embed_paths(files)
    assert list(result.ok_indices) == [0]
    assert len(result.failures) == 2
    assert {f.path.name for f in result.failures} == {"bad.jpg", "missing.jpg"}


def test_both_views_from_one_decode_match_the_separate_passes(small_folder, tmp_path, monkeypatch):
    import littlevision.data.decode as decode

    files = []
    for i, src in enumerate(sorted(small_folder.rglob("*.jpg"))[:5]):
        dst = tmp_path / f"views{i}.jpg"
        dst.write_bytes(src.read_bytes() + b"test_both_views")  # new content: not cached yet
        files.append(dst)
    files.insert(2, tmp_path / "missing.jpg")
    decoded = []
    real_load = decode.load_image
    monkeypatch.setattr(
        decode, "load_image", lambda p, *a, **k: (decoded.append(p), real_load(p, *a, **k))[1]
    )
    plain, mirrored = Embedder("lite0").embed_paths_and_mirrors(files)
    assert sorted(map(str, decoded)) == sorted(map(str, files))  # each file decoded once
    assert plain.n_cached == 0 and list(plain.ok_indices) == list(mirrored.ok_indices) == [
        0,
        1,
        3,
        4,
        5,
    ]
    assert [f.path.name for f in plain.failures] == ["missing.jpg"]
    monkeypatch.setattr(decode, "load_image", real_load)
    separate = Embedder("lite0", use_cache=False)
    np.testing.assert_allclose(plain.features, separate.embed_paths(files).features, atol=1e-5)
    np.testing.assert_allclose(
        mirrored.features, separate.embed_paths(files, flip=True).features, atol=1e-5
    )
    again = Embedder("lite0").embed_paths(files, flip=True)  # both views were cached
    assert again.n_cached == 5


def test_int8_and_fp32_features_never_share_a_cache_entry(small_folder, tmp_path):
    files = []
    for i, src in enumerate(sorted(small_folder.rglob("*.jpg"))[:6]):
        dst = tmp_path / f"prec{i}.jpg"
        dst.write_bytes(src.read_bytes() + b"test_int8_cache")
        files.append(dst)
    int8 = Embedder("lite0", precision="int8").calibrate(files)
    fp32 = Embedder("lite0")
    assert "int8" in int8.key and int8.key != fp32.key
    assert int8.cache_folder != fp32.cache_folder
    a = int8.embed_paths(files)
    assert a.n_cached == 0
    b = fp32.embed_paths(files)
    assert b.n_cached == 0  # the int8 vectors just stored were not taken for fp32 ones
    assert not np.array_equal(a.features, b.features)
    cos = (a.features * b.features).sum(1) / (
        np.linalg.norm(a.features, axis=1) * np.linalg.norm(b.features, axis=1)
    )
    assert cos.min() > 0.8  # the same images, seen by a close model (calibrated on 6 images)
    # the same files in another order calibrate the same int8 model: same key, cache hits
    again = Embedder("lite0", precision="int8").calibrate(files[::-1])
    assert again.key == int8.key
    c = again.embed_paths(files)
    assert c.n_cached == 6
    np.testing.assert_array_equal(c.features, a.features)
    assert Embedder("lite0").embed_paths(files).n_cached == 6
