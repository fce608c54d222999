"""The Report: JSON in the issue's shape, a lossless round trip, summaries and queries."""

from __future__ import annotations

import json
import shutil

import pytest

from littlevision.doctor import DoctorConfig, Finding, Report, examine


@pytest.fixture
def report(pets, make):
    shutil.copy(make.first(pets / "cats"), pets / "cats" / "twin.jpg")
    (pets / "dogs" / "empty.jpg").write_bytes(b"")
    return examine(pets, config=DoctorConfig(embeddings=False))


def test_json_has_findings_and_summary_with_relative_paths(report, tmp_path):
    data = json.loads(report.to_json(tmp_path / "out.json"))
    assert set(data) >= {"findings", "summary"}
    for f in data["findings"]:
        assert {"check", "severity", "files", "message"} <= set(f)
        assert f["severity"] in ("error", "warning", "info")
        assert all(not p.startswith("/") for p in f["files"])
    assert data["summary"]["by_severity"]["error"] == 2
    assert json.loads((tmp_path / "out.json").read_text()) == data
    [dupes] = [f for f in data["findings"] if f["check"] == "exact_duplicates"]
    assert len(dupes["files"]) == 2  # one finding per group, listing every member


def test_round_trip(report, tmp_path):
    report.to_json(tmp_path / "r.json")
    again = Report.from_json(tmp_path / "r.json")
    assert again.findings == report.findings
    assert again.summary()["by_check"] == report.summary()["by_check"]
    assert again.root == report.root and again.n_images == report.n_images


def test_queries(report):
    assert {f.check for f in report.at_least("error")} == {"unreadable", "exact_duplicates"}
    assert report.at_least("info") == report.findings
    assert report.flagged_files("unreadable") == {"dogs/empty.jpg"}
    assert "errors" in repr(report)
    assert "<table>" in report._repr_html_()
    with pytest.raises(ValueError):
        report.at_least("fatal")
    with pytest.raises(ValueError):
        Finding("x", "fatal", [], "no such severity")


def test_findings_are_sorted_worst_first(report):
    ranks = [("error", "warning", "info").index(f.severity) for f in report.findings]
    assert ranks == sorted(ranks)
