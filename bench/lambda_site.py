"""Python's import path as Lambda gives it to a function, for timing cold imports on this machine.

On Lambda a function sees its own folder, the layer (`/opt/python`: the layer's requirements without
the packages the runtime provides, as layers/core/Makefile builds it, and `feedback_core`) and the
runtime's boto3 with its dependencies, and nothing else. The development virtualenv holds much more,
and some of it changes what botocore imports: with `awscrt` or `pyOpenSSL` installed botocore loads
them (and with pyOpenSSL, `cryptography`) at import, which makes `import boto3` slower and flatters
every ratio to it. So the bench installs both folders once, at this virtualenv's versions (its
`pip freeze` as constraints), and runs the timed interpreters with `-S` on exactly these folders.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "core"
CACHE = ROOT / ".bench"
RUNTIME_PACKAGES = ("boto3",)
"""What the Lambda Python runtime provides (boto3 pulls in botocore, s3transfer, jmespath, dateutil,
six and urllib3)."""


@dataclass(frozen=True)
class LambdaSite:
    runtime: Path
    layer: Path

    def path_for(self, function_folder: Path) -> list[str]:
        """sys.path in Lambda's order: the function, the layer, the runtime's packages."""
        return [str(function_folder), str(LAYER), str(self.layer), str(self.runtime)]


def runtime_provided() -> list[str]:
    """The names layers/core/Makefile removes from the layer (the runtime provides them)."""
    makefile = (LAYER / "Makefile").read_text()
    found = re.search(r"^RUNTIME_PROVIDED = (.+)$", makefile, re.MULTILINE)
    if found is None:
        raise RuntimeError("layers/core/Makefile no longer names RUNTIME_PROVIDED")
    return found[1].split()


def _pip(*arguments: str) -> str:
    return subprocess.run(  # noqa: S603 (this interpreter's pip)
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def lambda_site() -> LambdaSite:
    """The two folders, installed on first use and again whenever the requirements or versions change."""
    freeze = _pip("freeze", "--exclude-editable")
    requirements = (LAYER / "requirements.txt").read_text()
    stamp = hashlib.sha256((freeze + requirements + " ".join(RUNTIME_PACKAGES)).encode()).hexdigest()
    site = LambdaSite(runtime=CACHE / "runtime", layer=CACHE / "layer")
    stamp_file = CACHE / "stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return site
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.mkdir(parents=True)
    constraints = CACHE / "constraints.txt"
    constraints.write_text(freeze)
    pinned = ("install", "--quiet", "--constraint", str(constraints), "--target")
    _pip(*pinned, str(site.runtime), *RUNTIME_PACKAGES)
    _pip(*pinned, str(site.layer), "--requirement", str(LAYER / "requirements.txt"))
    for name in runtime_provided():
        for path in [site.layer / name, site.layer / f"{name}.py", *site.layer.glob(f"{name}-*.dist-info")]:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    stamp_file.write_text(stamp)
    return site
