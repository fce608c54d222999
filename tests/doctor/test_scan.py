"""The scan decodes each image once, small, keeps only numbers, and survives any file."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from littlevision.data.dataset import Dataset
from littlevision.doctor import scan as scan_module
from littlevision.doctor.scan import scan


def test_one_small_decode_per_image_and_no_pixels_kept(pets, monkeypatch):
    (pets / "cats" / "notes.txt").write_text("hello")
    calls = []
    real = scan_module.load_image

    def counting(source, size=None, **kw):
        calls.append((source, size))
        return real(source, size, **kw)

    monkeypatch.setattr(scan_module, "load_image", counting)
    ds = Dataset.from_folder(pets)
    records = scan(list(ds), pets, 96, max_pixels=10**8, workers=2)
    assert len(records) == len(ds) == 13
    assert sorted(str(s) for s, _ in calls) == sorted(
        str(p) for p in ds.paths if p.suffix == ".jpg"
    )
    assert {size for _, size in calls} == {96}
    for rec in records:
        for f in fields(rec):
            assert not isinstance(getattr(rec, f.name), np.ndarray)
    ok = [r for r in records if r.ok]
    assert len(ok) == 12 and all(r.phash is not None and r.measures for r in ok)
    assert [r.index for r in records] == list(range(13))  # order kept despite threads
    assert records[0].rel.startswith("cats/")


def test_an_unexpected_decoder_failure_becomes_a_finding(pets, monkeypatch):
    def explode(*a, **kw):
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(scan_module, "load_image", explode)
    records = scan(list(Dataset.from_folder(pets)), pets, 64, max_pixels=10**8)
    assert all(r.error is not None and r.error.reason == "unreadable" for r in records)
    assert "RuntimeError" in records[0].error.words
