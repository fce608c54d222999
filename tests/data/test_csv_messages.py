"""The CSV reader's messages name what ``train`` and ``Dataset.from_csv`` really accept."""

from __future__ import annotations

import pytest

from littlevision.data.dataset import Dataset
from littlevision.errors import UserError


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff")
    return folder


def test_a_header_only_csv_says_it_has_no_rows(tmp_path, images):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("filename,label\n")
    with pytest.raises(UserError, match="header row .* but no rows"):
        Dataset.from_csv(csv_file, images)


def test_an_unknown_label_column_names_the_accepted_ones(tmp_path, images):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,size,width\na.jpg,3,5\n")
    with pytest.raises(UserError) as e:
        Dataset.from_csv(csv_file, images)
    assert "name it label, class or category" in str(e.value)
    assert "pass label_col=..." not in str(e.value)
