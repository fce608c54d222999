"""Relabelling a CSV-labelled set: one cell changes, every other byte stays, undo is exact."""

from __future__ import annotations

import pytest

from littlevision.data.dataset import Dataset
from littlevision.doctor import restore
from littlevision.errors import UserError
from littlevision.review import actions
from littlevision.review.csvlabels import field_spans, read_table, rows_for_file
from littlevision.review.journal import Journal
from littlevision.review.target import open_target
from tests.review.conftest import tree


def test_field_spans_respect_quotes():
    line = 'a,"b, ""c""",d\r\n'
    spans = field_spans(line, ",", '"')
    assert [line[s:e] for s, e in spans] == ["a", '"b, ""c"""', "d"]


def _labels(root):
    ds = Dataset.from_csv(root / "labels.csv", root / "images")
    return {p.name: lab for p, lab in zip(ds.paths, ds.labels, strict=True)}


def test_relabel_rewrites_only_that_row(breeds):
    csv = breeds / "labels.csv"
    original = csv.read_bytes()
    target, dataset = open_target(breeds)
    assert target.kind == "csv" and target.csv == csv
    labels = _labels(breeds)
    name = next(n for n, lab in labels.items() if lab == "Bengal" and n.endswith(".jpg"))
    rel = f"images/{name}"
    result = actions.relabel(target, rel, "Abyssinian")
    assert result.op == "relabel_csv" and result.now == rel
    assert (breeds / rel).is_file()  # the image itself never moves
    changed = csv.read_bytes()
    assert changed.startswith(b"\xef\xbb\xbf") and changed.count(b"\r\n") == original.count(b"\r\n")
    old_lines, new_lines = original.split(b"\r\n"), changed.split(b"\r\n")
    diff = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert len(diff) == 1
    assert new_lines[diff[0]] == old_lines[diff[0]].replace(b",Bengal,", b",Abyssinian,")
    after = _labels(breeds)
    assert after[name] == "Abyssinian"
    assert {n: lab for n, lab in after.items() if n != name} == {
        n: lab for n, lab in labels.items() if n != name
    }
    actions.undo(target)
    assert csv.read_bytes() == original


def test_the_quoted_row_keeps_its_other_cells(breeds):
    csv = breeds / "labels.csv"
    target, _ = open_target(breeds)
    table = read_table(csv)
    line = next(i for i, text in enumerate(table.lines) if '""quotes""' in text)
    row_id = table.lines[line].split(",")[0]
    file = next(p for p in (breeds / "images").iterdir() if p.name.startswith(row_id))
    assert rows_for_file(table, breeds / "images", file) == [line]
    before = table.lines[line]
    actions.relabel(target, f"images/{file.name}", "Siamese", allow_new_classes=True)
    after = read_table(csv).lines[line]
    assert after == before.replace(",Bengal,", ",Siamese,").replace(",Abyssinian,", ",Siamese,")
    assert '"likes boxes, and ""quotes"""' in after


def test_restore_after_many_actions_is_byte_identical(breeds, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spare = sorted((breeds / "images").iterdir())[-1]
    spare.rename(inbox / "new-cat.jpg")  # its row stays: an image the CSV names but lacks
    before = tree(breeds, inbox)
    target, dataset = open_target(breeds)
    j = Journal(breeds)
    rels = [target.rel(p) for p in dataset.paths]
    actions.relabel(
        target, rels[0], "Abyssinian" if dataset.labels[0] == "Bengal" else "Bengal", journal=j
    )
    actions.quarantine(target, rels[1], journal=j)
    actions.relabel(target, rels[2], "Persian", allow_new_classes=True, journal=j)
    actions.label(target, inbox / "new-cat.jpg", "Bengal", journal=j)
    actions.keep(target, [rels[3]], journal=j)
    assert _labels(breeds)["new-cat.jpg"] == "Bengal"
    assert tree(breeds, inbox) != before
    result = restore(j.quarantine)
    assert not result.conflicts
    assert tree(breeds, inbox) == before


def test_unknown_class_is_refused_for_csv_too(breeds):
    target, dataset = open_target(breeds)
    before = tree(breeds)
    with pytest.raises(UserError, match="There is no class 'Persian'"):
        actions.relabel(target, target.rel(dataset.paths[0]), "Persian")
    assert tree(breeds) == before
