"""Builds the web assets the meta function serves: ``clients/web`` → ``functions/meta/web``.

``sam build`` copies only ``functions/meta/`` into the function, so the built files are committed there.
JavaScript is minified with rjsmin (pinned in pyproject.toml, so a build is reproducible); pages and
stylesheets are copied as they are. ``manifest.json`` lists every built file with its source, SHA-256
and sizes, and the widget's sizes go into docs/BENCHMARKS.md (between the ``web:`` markers). Run
``make web`` after changing a file in clients/web; a unit test fails while the committed copy is stale
(tests/unit/test_web_assets.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

import rjsmin  # type: ignore[import-untyped]  # ships no type information

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "clients" / "web"
TARGET = ROOT / "functions" / "meta" / "web"
MANIFEST = "manifest.json"
WIDGET = "feedback-widget.js"
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- web:begin -->", "<!-- web:end -->"
SERVED_SUFFIXES = {".js", ".css", ".html"}
"""Type declarations (.d.ts) and notes stay in clients/web: browsers never load them."""


def sources() -> list[Path]:
    """The widget and the dashboard page with its files."""
    found = [SOURCES / WIDGET, *sorted(SOURCES.glob("dashboard*"))]
    return [path for path in found if path.suffix in SERVED_SUFFIXES and not path.name.endswith(".d.ts")]


def gzip_size(content: bytes) -> int:
    return len(gzip.compress(content, compresslevel=9, mtime=0))


def built(source: Path) -> bytes:
    text = source.read_text(encoding="utf-8")
    if source.suffix == ".js":
        # /*! ... */ comments survive: that is where a licence notice would go.
        text = rjsmin.jsmin(text, keep_bang_comments=True).strip() + "\n"
    return text.encode()


def render() -> dict[str, bytes]:
    """{file name: content} of everything under functions/meta/web, manifest included."""
    files = {source.name: built(source) for source in sources()}
    manifest = {
        "minifier": f"rjsmin {rjsmin.__version__}",
        "files": {
            name: {
                "source": f"clients/web/{name}",
                "sha256": hashlib.sha256(content).hexdigest(),
                "bytes": len(content),
                "gzip_bytes": gzip_size(content),
            }
            for name, content in files.items()
        },
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def size_table(files: dict[str, bytes]) -> str:
    """The widget's sizes, as docs/BENCHMARKS.md shows them."""
    source = (SOURCES / WIDGET).read_bytes()
    built_widget = files[WIDGET]
    return (
        "| file | source | source, gzip -9 | minified | minified, gzip -9 |\n"
        "|---|---|---|---|---|\n"
        f"| {WIDGET} | {len(source):,} bytes | {gzip_size(source):,} bytes | {len(built_widget):,} bytes "
        f"| {gzip_size(built_widget):,} bytes |\n"
    )


def with_size_table(document: str, table: str) -> str:
    before, rest = document.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{table}{END}{after}"


def main() -> int:
    files = render()
    BENCHMARKS.write_text(with_size_table(BENCHMARKS.read_text(), size_table(files)))
    TARGET.mkdir(parents=True, exist_ok=True)
    for stale in {path.name for path in TARGET.iterdir()} - set(files):
        (TARGET / stale).unlink()
    for name, content in files.items():
        (TARGET / name).write_bytes(content)
    widget = json.loads(files[MANIFEST])["files"][WIDGET]
    print(
        f"built {len(files) - 1} files into {TARGET.relative_to(ROOT)}; "
        f"{WIDGET}: {widget['bytes']} bytes, {widget['gzip_bytes']} gzipped",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
