"""``feedbackctl feedback export``: pages of records appended to a file, resumable after an interruption.

Next to the output file, ``<file>.cursor`` holds the cursor after the last page written and the file's
size at that point; it is replaced (atomically) after each page is flushed. ``--resume`` cuts the file
back to that size and continues from that cursor, so every record is written exactly once. The state
file is removed when the export completes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from feedback_client import FeedbackClient
from feedbackctl.files import FileFormat, RecordWriter


@dataclass(frozen=True)
class ExportState:
    cursor: str
    offset: int
    records: int
    file_format: str
    filters: dict[str, Any]


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".cursor")


def read_state(out: Path) -> ExportState | None:
    try:
        return ExportState(**json.loads(state_path(out).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise ValueError(f"{state_path(out)} is not an export state: {error}") from None


def save_state(out: Path, state: ExportState) -> None:
    path = state_path(out)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(asdict(state)), encoding="utf-8")
    os.replace(partial, path)


def export(
    client: FeedbackClient,
    out: Path,
    file_format: FileFormat,
    filters: dict[str, Any],
    *,
    resume: bool,
    page_size: int,
    on_page: Callable[[int, int], None],
) -> int:
    """Writes every matching record to ``out``; returns how many the file holds.

    ``on_page(written_now, total_in_file)`` is called after each page (and once at the start of a
    resumed export, with what the file held).
    """
    state = read_state(out) if resume else None
    if resume and state is None:
        raise ValueError(f"nothing to resume: {state_path(out)} does not exist")
    if state is not None and (state.file_format != file_format or state.filters != filters):
        raise ValueError(f"{state_path(out)} was written with other options; start over without --resume")
    cursor = state.cursor if state else None
    records = state.records if state else 0
    with out.open("r+" if state else "w", encoding="utf-8", newline="") as handle:
        writer = RecordWriter(handle, file_format)
        if state:
            handle.truncate(state.offset)
            handle.seek(state.offset)
            on_page(0, records)
        else:
            writer.header()
        for page in client.list_feedback_pages(**filters, page_size=page_size, cursor=cursor):
            for record in page.items:
                writer.write(record)
            records += len(page.items)
            handle.flush()
            if page.next_cursor:
                save_state(out, ExportState(page.next_cursor, handle.tell(), records, file_format, filters))
            on_page(len(page.items), records)
    state_path(out).unlink(missing_ok=True)
    return records
