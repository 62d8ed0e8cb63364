"""Vendors axe-core (the accessibility checker the browser tests run) from npm into tests/browser/vendor.

``make vendor-axe`` fetches the exact version pinned in tests/browser/vendor/axe-core.json
(``AXE_VERSION=x.y.z`` moves to another one), refuses a tarball whose integrity changed under the same
version, copies ``axe.min.js`` and its licence, and rewrites the manifest with their SHA-256. The tests
check those digests before injecting the file, so they never run anything else. Needs npm.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "tests" / "browser" / "vendor"
MANIFEST = FOLDER / "axe-core.json"
FILES = ("axe.min.js", "LICENSE")
PACKAGE = "axe-core"


def main() -> int:
    previous = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    wanted = os.environ.get("AXE_VERSION") or previous.get("version")
    if not wanted:
        sys.exit("no version pinned yet: make vendor-axe AXE_VERSION=x.y.z")
    with tempfile.TemporaryDirectory() as work:
        packed = subprocess.run(  # noqa: S603 (a fixed command; the version is a pin)
            ["npm", "pack", "--json", "--pack-destination", work, f"{PACKAGE}@{wanted}"],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
        )
        pack = json.loads(packed.stdout)[0]
        if pack["version"] == previous.get("version") and pack["integrity"] != previous.get("integrity"):
            sys.exit(f"{PACKAGE} {pack['version']} changed on the registry: {pack['integrity']}")
        with tarfile.open(Path(work) / pack["filename"]) as archive:
            contents = {}
            for name in FILES:
                member = archive.extractfile(f"package/{name}")
                assert member is not None, name
                contents[name] = member.read()
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        (FOLDER / name).write_bytes(content)
    manifest = {
        "package": PACKAGE,
        "version": pack["version"],
        "integrity": pack["integrity"],
        "license": "MPL-2.0",
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()},
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"vendored {PACKAGE} {pack['version']} into {FOLDER.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
