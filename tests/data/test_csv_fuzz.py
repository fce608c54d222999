"""Property-based fuzzing of the CSV reader (issue 12): any text as a labels CSV gives a Dataset
or one ``UserError`` sentence -- never another exception."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from littlevision.data.dataset import Dataset
from littlevision.errors import UserError

FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
NAMES = ["a.jpg", "b.png", "c", "A.JPG", "sub/d.jpg", "../e.jpg", "", "a"]
HEADERS = ["id", "label", "filename", "class", "path", "x", "", "Label ", "id;label"]
cell = st.one_of(
    st.sampled_from(NAMES + HEADERS),
    st.text(alphabet=string.printable + "éß\u00a0\ufeff\x00", max_size=12),
)


def _load(tmp_path, text: str | bytes):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True, exist_ok=True)
    for name in ("a.jpg", "b.png", "c.jpg", "sub/d.jpg"):
        (images / name).write_bytes(b"\xff\xd8\xff")
    csv_file = tmp_path / "labels.csv"
    csv_file.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        ds = Dataset.from_csv(csv_file, images)
    except UserError as e:
        assert str(e) and "\n" not in str(e).strip()
        return None
    for item in ds:
        assert item.path.is_relative_to(images) or item.path.resolve().is_relative_to(
            images.resolve()
        )
    return ds


@FUZZ
@given(
    rows=st.lists(st.lists(cell, min_size=0, max_size=4), min_size=0, max_size=8),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
)
def test_any_table_is_a_dataset_or_one_sentence(tmp_path_factory, rows, sep, newline, bom):
    text = newline.join(sep.join(row) for row in rows)
    _load(tmp_path_factory.mktemp("csv"), ("\ufeff" if bom else "") + text)


@FUZZ
@given(data=st.binary(max_size=512))
def test_any_bytes_are_a_dataset_or_one_sentence(tmp_path_factory, data):
    _load(tmp_path_factory.mktemp("csv"), data)
