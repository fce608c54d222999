"""Where the listing and the files disagree: CSV rows without a file, files without a row, rows
that contradict each other, files a CSV names under another name, files outside class folders.

The loader (:class:`~littlevision.data.dataset.Dataset`) already records what it left out in
``dataset.load_report``; these checks turn that into findings, one per kind, listing every
file or row concerned. They are never fixed automatically: the listing is the user's to edit.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from PIL import Image

from littlevision.doctor.context import Context
from littlevision.doctor.registry import get_check, register_check
from littlevision.doctor.report import Finding
from littlevision.doctor.scan import relative_name


def _report(ctx: Context):
    return getattr(ctx.dataset, "load_report", None)


def _csv_name(ctx: Context) -> str:
    report = _report(ctx)
    return getattr(report, "csv_name", None) or "the CSV"


def _ids_as_files(ctx: Context, ids: list[str]) -> list[str]:
    """CSV ids as paths relative to the data folder (ids are relative to the images folder)."""
    images = getattr(ctx.dataset, "root", None) or ctx.root
    return [relative_name(Path(images) / str(i).replace("\\", "/"), ctx.root) for i in ids]


def _listing(
    ctx: Context,
    check: str,
    field_name: str,
    words: str,
    *,
    as_ids: bool,
) -> list[Finding]:
    values = list(getattr(_report(ctx), field_name, None) or [])
    if not values:
        return []
    files = (
        _ids_as_files(ctx, values) if as_ids else [relative_name(Path(v), ctx.root) for v in values]
    )
    shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
    spec = get_check(check)
    return [spec.finding(files, f"{len(files)} {words} (e.g. {shown}).", count=len(files))]


@register_check(
    "missing_files",
    severity="warning",
    title="CSV rows without a file",
    advice="Fix the names in the CSV or add the missing images; these rows are ignored.",
)
def missing_files(ctx: Context) -> list[Finding]:
    """Rows of the labels CSV naming a file that is not in the images folder."""
    return _listing(
        ctx,
        "missing_files",
        "missing_rows",
        f"rows of {_csv_name(ctx)} name a file that is not there",
        as_ids=True,
    )


@register_check(
    "unlabelled_files",
    severity="warning",
    title="Files without a label",
    advice="Add rows for them to the CSV, or move them out of the images folder; "
    "they are not used.",
)
def unlabelled_files(ctx: Context) -> list[Finding]:
    """Files in the images folder that no CSV row labels (or whose rows conflict)."""
    return _listing(
        ctx,
        "unlabelled_files",
        "unlabelled_files",
        f"files have no label in {_csv_name(ctx)}",
        as_ids=False,
    )


@register_check(
    "empty_labels",
    severity="warning",
    title="CSV rows with an empty label",
    advice="Fill in the label, or delete the row.",
)
def empty_labels(ctx: Context) -> list[Finding]:
    """CSV rows whose label cell is empty."""
    return _listing(
        ctx,
        "empty_labels",
        "empty_labels",
        f"rows of {_csv_name(ctx)} have an empty label",
        as_ids=True,
    )


@register_check(
    "conflicting_rows",
    severity="warning",
    title="Files labelled twice, differently",
    advice="Keep the one row with the right label; until then these files are not used.",
)
def conflicting_rows(ctx: Context) -> list[Finding]:
    """CSV rows giving a file another label than an earlier row does."""
    return _listing(
        ctx,
        "conflicting_rows",
        "conflicting_rows",
        f"rows of {_csv_name(ctx)} give a file a conflicting label",
        as_ids=True,
    )


@register_check(
    "ambiguous_rows",
    severity="warning",
    title="CSV rows matching several files",
    advice="Write the full file name (with extension) in the CSV.",
)
def ambiguous_rows(ctx: Context) -> list[Finding]:
    """CSV ids that match several files (``cat1`` with ``cat1.jpg`` and ``cat1.png`` present)."""
    return _listing(
        ctx,
        "ambiguous_rows",
        "ambiguous_rows",
        f"rows of {_csv_name(ctx)} match several files",
        as_ids=True,
    )


@register_check(
    "duplicate_rows",
    severity="info",
    title="Repeated CSV rows",
    advice="Harmless (same file, same label); delete the repeats to tidy up.",
)
def duplicate_rows(ctx: Context) -> list[Finding]:
    """CSV rows repeating a file (with the same label) that an earlier row listed."""
    return _listing(
        ctx,
        "duplicate_rows",
        "duplicate_rows",
        f"rows of {_csv_name(ctx)} repeat a file already listed",
        as_ids=True,
    )


@register_check(
    "ignored_files",
    severity="info",
    title="Files outside the class folders",
    advice="Harmless; put images that belong to a class into its folder.",
)
def ignored_files(ctx: Context) -> list[Finding]:
    """Files and folders the loader skipped (beside the class folders, extra top-level folders)."""
    return _listing(
        ctx,
        "ignored_files",
        "ignored",
        "paths are outside the class folders and were ignored",
        as_ids=False,
    )


def _csv_cells(path: Path) -> set[str]:
    """Every cell of a CSV file, stripped, with backslashes as slashes (ids may be sub-paths)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return {
        c.strip().replace("\\", "/").removeprefix("./")
        for row in csv.reader(text.splitlines(), dialect)
        for c in row
        if c.strip()
    }


def _stem_key(name: str) -> str:
    p = PurePosixPath(name)
    return str(p.with_suffix("")).lower() if p.suffix else name.lower()


@register_check(
    "name_mismatch",
    severity="warning",
    title="CSV names a file differently",
    advice="Correct these names in the CSV: other tools look for the exact name and "
    "will not find the file.",
)
def name_mismatch(ctx: Context) -> list[Finding]:
    """Files the CSV names with another extension or case (``Cat1.jpg`` for ``Cat1.png``).

    littlevision's loader matches them anyway; most other tools would not.
    """
    source = getattr(ctx.dataset, "source", None)
    images = getattr(ctx.dataset, "root", None)
    if not source or images is None or not Path(source).is_file():
        return []
    cells = _csv_cells(Path(source))
    known = Image.registered_extensions()
    by_stem: dict[str, list[str]] = {}
    for cell in cells:
        if PurePosixPath(cell).suffix.lower() in known:
            by_stem.setdefault(_stem_key(cell), []).append(cell)
    spec = get_check("name_mismatch")
    out = []
    for rec in ctx.records:
        rel = relative_name(rec.path, Path(images))
        if rel in cells:
            continue
        named = sorted(by_stem.get(_stem_key(rel), []))
        if named:
            out.append(
                spec.finding(
                    [rec.rel],
                    f"{Path(source).name} names '{named[0]}' but the "
                    f"file is '{PurePosixPath(rel).name}'.",
                    csv_name=named[0],
                )
            )
    return out


@register_check(
    "links_outside",
    severity="warning",
    title="Links that lead out of the data folder",
    advice=(
        "The doctor neither examines nor moves what these symlinks point to; copy the files "
        "into the data folder if they belong to it, or remove the links."
    ),
)
def links_outside(ctx: Context) -> list[Finding]:
    """Files reached through a symlinked file or folder whose real path is outside DATA."""
    if not ctx.outside:
        return []
    files = sorted(relative_name(Path(p), ctx.root) for p in ctx.outside)
    shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
    spec = get_check("links_outside")
    return [
        spec.finding(
            files,
            f"{len(files)} file(s) are links (or inside linked folders) that lead out of the "
            f"data folder; not examined (e.g. {shown}).",
            count=len(files),
        )
    ]
