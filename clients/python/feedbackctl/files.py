"""Feedback records in files: CSV (one row per record, JSON in the object columns) and JSON Lines.

Export writes every field of a record; import reads back what a backend may write (ids, values,
session, agent, context, source) and leaves out what the service assigns (ids, versions, times).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from feedback_client import FeedbackRecord

FileFormat = Literal["csv", "jsonl"]

COLUMNS = (
    "feedback_id",
    "project",
    "run_id",
    "user_id",
    "session_id",
    "agent",
    "outcome",
    "score",
    "weight",
    "comment",
    "details",
    "tags",
    "source",
    "context",
    "created_at",
    "updated_at",
    "version",
    "expires_at",
)
JSON_COLUMNS = frozenset({"details", "tags", "context"})
IMPORTED = (
    "run_id",
    "user_id",
    "session_id",
    "agent",
    "outcome",
    "score",
    "weight",
    "comment",
    "details",
    "tags",
    "source",
    "context",
)


def format_of(path: Path, given: str | None) -> FileFormat:
    name = (given or path.suffix.lstrip(".")).lower()
    if name in {"csv", "jsonl"}:
        return "csv" if name == "csv" else "jsonl"
    if name in {"ndjson", "json"}:
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path}: pass --format csv or --format jsonl")


def record_row(record: FeedbackRecord) -> dict[str, str]:
    values = record.model_dump(mode="json")
    row: dict[str, str] = {}
    for column in COLUMNS:
        value = values.get(column)
        if value is None:
            row[column] = ""
        elif column in JSON_COLUMNS:
            row[column] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        else:
            row[column] = str(value)
    return row


class RecordWriter:
    """Appends records to an open text file in one format."""

    def __init__(self, out: TextIO, file_format: FileFormat) -> None:
        self.out = out
        self.format = file_format
        self.csv = (
            csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n") if file_format == "csv" else None
        )

    def header(self) -> None:
        if self.csv:
            self.csv.writeheader()

    def write(self, record: FeedbackRecord) -> None:
        if self.csv:
            self.csv.writerow(record_row(record))
        else:
            self.out.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False) + "\n")


def _csv_item(row: dict[str, str | None]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for column in IMPORTED:
        text = row.get(column)
        if text is None or text == "":
            continue
        if column in JSON_COLUMNS:
            item[column] = json.loads(text)
        elif column == "score":
            item[column] = int(text)
        elif column == "weight":
            item[column] = float(text)
        else:
            item[column] = text
    return item


@dataclass
class RecordReader:
    """The items of a CSV or JSONL file, one per record, for ``import_feedback``.

    A row that cannot be read is handed out as an empty item (which the client refuses unsent) and its
    reason kept in ``unreadable``, by the item's position, so the error report can say why.
    """

    path: Path
    file_format: FileFormat
    unreadable: dict[int, str] = field(default_factory=dict)

    def rows(self, handle: TextIO) -> Iterator[dict[str, str | None] | str]:
        if self.file_format == "csv":
            reader = csv.DictReader(handle)
            missing = {"run_id", "user_id"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{self.path}: the header has no column {', '.join(sorted(missing))}")
            yield from reader
        else:
            for line in handle:
                if line.strip():
                    yield line

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.path.open(encoding="utf-8", newline="") as handle:
            for index, row in enumerate(self.rows(handle)):
                try:
                    yield self.item(row)
                except (ValueError, TypeError) as error:
                    self.unreadable[index] = f"unreadable row: {error}"
                    yield {}

    def item(self, row: dict[str, str | None] | str) -> dict[str, Any]:
        if isinstance(row, str):
            document = json.loads(row)
            if not isinstance(document, dict):
                raise TypeError("a line must be a JSON object")
            return {key: value for key, value in document.items() if key in IMPORTED and value is not None}
        return _csv_item(row)


def count_records(path: Path, file_format: FileFormat) -> int:
    """How many records a file holds (for the progress bar's total), reading it once."""
    with path.open(encoding="utf-8", newline="") as handle:
        if file_format == "csv":
            return sum(1 for _ in csv.DictReader(handle))
        return sum(1 for line in handle if line.strip())
