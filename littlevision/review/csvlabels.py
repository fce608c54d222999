"""Relabel one image in a labels CSV by changing only its label cell, byte for byte.

A user's CSV is theirs: its other columns, row order, quoting, delimiter, encoding, byte-order
mark and line endings must survive a relabel. So the file is never re-serialised by the ``csv``
module: the label cell's span is found in the raw line and only that span is replaced, and the
whole file is written to a temporary sibling, fsync'ed and renamed over the original (atomic:
a crash leaves the old file or the new one, never half of each). The journal keeps the replaced
raw text, so undo puts back exactly what was there.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from littlevision._io import write_bytes
from littlevision.data.dataset import _FileFinder, _pick_columns
from littlevision.errors import UserError

_BOM = b"\xef\xbb\xbf"


@dataclass
class CsvTable:
    """A labels CSV as raw lines, with what is needed to find and edit one row's label.

    Attributes:
        path: The CSV file.
        encoding: ``"utf-8"`` or ``"latin-1"`` (what the dataset reader falls back to).
        bom: Whether the file starts with a UTF-8 byte-order mark (kept as is).
        lines: The text split into lines, each with its own line ending.
        delimiter: The sniffed delimiter.
        quotechar: The quote character.
        id_pos: Column index of the file ids.
        label_pos: Column index of the labels.
        header_line: Index in ``lines`` of the header row.
    """

    path: Path
    encoding: str
    bom: bool
    lines: list[str]
    delimiter: str
    quotechar: str
    id_pos: int
    label_pos: int
    header_line: int
    sha256: str = ""
    _rows: list[tuple[int, list[str]]] = field(default_factory=list, repr=False)

    def rows(self) -> list[tuple[int, list[str]]]:
        """``(line index, parsed fields)`` of each non-blank data row, in file order."""
        return self._rows

    def to_bytes(self) -> bytes:
        return (_BOM if self.bom else b"") + "".join(self.lines).encode(self.encoding)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parse_line(line: str, dialect) -> list[str]:
    body = line.rstrip("\r\n")
    try:
        return next(csv.reader([body], dialect), [])
    except csv.Error:
        return []


def read_table(
    csv_path: str | os.PathLike[str], id_col: str | None = None, label_col: str | None = None
) -> CsvTable:
    """Read a labels CSV the way :meth:`Dataset.from_csv` does, keeping its raw lines.

    Raises:
        UserError: The file cannot be read, is empty or its columns cannot be told apart.
    """
    path = Path(csv_path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"Cannot read the labels file '{path}': {e.strerror or e}.") from None
    bom = raw.startswith(_BOM)
    body = raw[len(_BOM) :] if bom else raw
    try:
        text, encoding = body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = body.decode("latin-1"), "latin-1"
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    lines = text.splitlines(keepends=True)
    parsed = [(i, _parse_line(line, dialect)) for i, line in enumerate(lines)]
    parsed = [(i, f) for i, f in parsed if any(c.strip() for c in f)]
    if not parsed:
        raise UserError(f"The labels file '{path}' is empty: expected a header row and rows.")
    header_line, header = parsed[0]
    header = [c.strip() for c in header]
    id_name, label_name = _pick_columns(path, header, id_col, label_col)
    return CsvTable(
        path=path,
        encoding=encoding,
        bom=bom,
        lines=lines,
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar or '"',
        id_pos=header.index(id_name),
        label_pos=header.index(label_name),
        header_line=header_line,
        sha256=_sha(raw),
        _rows=parsed[1:],
    )


def field_spans(line: str, delimiter: str, quotechar: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of each raw field of one CSV line (quotes included,
    line ending excluded)."""
    end_of_text = len(line.rstrip("\r\n"))
    spans: list[tuple[int, int]] = []
    start, i, quoted = 0, 0, False
    while i < end_of_text:
        ch = line[i]
        if quoted:
            if ch == quotechar:
                if i + 1 < end_of_text and line[i + 1] == quotechar:
                    i += 1  # a doubled quote inside a quoted field
                else:
                    quoted = False
        elif ch == quotechar:
            quoted = True
        elif ch == delimiter:
            spans.append((start, i))
            start = i + 1
        i += 1
    spans.append((start, end_of_text))
    return spans


def _encode_cell(value: str, like: str, delimiter: str, quotechar: str) -> str:
    """``value`` as a raw cell, quoted when ``like`` (the cell it replaces) was or when needed."""
    needs = any(c in value for c in (delimiter, quotechar, "\r", "\n")) or value != value.strip()
    if needs or like.strip().startswith(quotechar):
        return quotechar + value.replace(quotechar, quotechar * 2) + quotechar
    return value


@dataclass(frozen=True)
class LineEdit:
    """One changed row: its line index and the whole raw line before and after (endings kept)."""

    line: int
    old: str
    new: str


def rows_for_file(table: CsvTable, images_dir: Path, file: Path) -> list[int]:
    """Line indices of the rows whose id names ``file`` (usually one)."""
    finder = _FileFinder(Path(os.path.abspath(images_dir)))
    target = Path(os.path.abspath(file))
    out = []
    for line, fields in table.rows():
        raw_id = fields[table.id_pos].strip() if table.id_pos < len(fields) else ""
        if raw_id and finder.find(raw_id) == target:
            out.append(line)
    return out


def current_label(table: CsvTable, line: int) -> str:
    fields = _parse_line(table.lines[line], _dialect(table))
    return fields[table.label_pos].strip() if table.label_pos < len(fields) else ""


def _dialect(table: CsvTable):
    class D(csv.excel):
        delimiter = table.delimiter
        quotechar = table.quotechar

    return D


def set_label(table: CsvTable, line: int, label: str) -> LineEdit:
    """Write ``label`` into the label cell of ``line`` (in memory), in the style of that cell."""
    before = text = table.lines[line]
    spans = field_spans(text, table.delimiter, table.quotechar)
    while len(spans) <= table.label_pos:  # a short row: add the missing cells
        end = spans[-1][1]
        text = text[:end] + table.delimiter + text[end:]
        spans.append((end + 1, end + 1))
    start, end = spans[table.label_pos]
    cell = _encode_cell(label, text[start:end], table.delimiter, table.quotechar)
    table.lines[line] = text[:start] + cell + text[end:]
    return LineEdit(line=line, old=before, new=table.lines[line])


def revert_line(table: CsvTable, line: int, old: str, new: str) -> bool:
    """Put ``old`` back where ``new`` is (at ``line``, else its first other occurrence).

    Returns:
        Whether ``new`` was found (``False``: the row was edited since; nothing changed).
    """
    if 0 <= line < len(table.lines) and table.lines[line] == new:
        table.lines[line] = old
        return True
    for i, text in enumerate(table.lines):
        if text == new:
            table.lines[i] = old
            return True
    return False


def append_row(table: CsvTable, file_id: str, label: str) -> str:
    """Add ``file_id,label`` (other columns empty) as a last row; returns the exact text added."""
    ending = "\r\n" if any(line.endswith("\r\n") for line in table.lines) else "\n"
    n_cols = max(table.id_pos, table.label_pos) + 1
    header_spans = field_spans(table.lines[table.header_line], table.delimiter, table.quotechar)
    n_cols = max(n_cols, len(header_spans))
    cells = [""] * n_cols
    cells[table.id_pos] = _encode_cell(file_id, "", table.delimiter, table.quotechar)
    cells[table.label_pos] = _encode_cell(label, "", table.delimiter, table.quotechar)
    added = table.delimiter.join(cells) + ending
    if table.lines and not table.lines[-1].endswith(("\n", "\r")):
        added = ending + added
    table.lines.append(added)
    return added


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary sibling, fsync, rename, fsync the folder.

    Raises:
        PermissionError / OSError: The folder cannot be written; ``path`` is then unchanged.
    """
    write_bytes(path, data, fsync=True)


def check_writable(path: Path) -> None:
    """Raise a clear :class:`UserError` when ``path`` (a CSV) cannot be replaced."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(
            f"'{path}' cannot be changed: its folder '{folder}' is read-only. Nothing was changed."
        )
