"""clients/python installs on its own: nothing in it imports the service's code, boto3 or the tests, and
what it imports from outside the standard library is what its pyproject declares."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

from tests.sdk.conftest import ROOT

pytestmark = pytest.mark.sdk

PACKAGE = ROOT / "clients" / "python"
OWN = {"feedback_client", "feedbackctl"}
# Import names of the declared distributions (typer vendors its click).
DECLARED_IMPORTS = {"httpx": "httpx", "pydantic": "pydantic", "typer": "typer", "rich": "rich"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_client_package_imports_only_its_declared_dependencies() -> None:
    declared = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0] for requirement in declared}
    assert names == set(DECLARED_IMPORTS)
    sources = sorted(PACKAGE.rglob("*.py"))
    assert sources
    outside = {
        str(path.relative_to(PACKAGE)): sorted(
            root
            for root in imported_roots(path)
            if root not in sys.stdlib_module_names
            and root not in OWN
            and root not in DECLARED_IMPORTS.values()
        )
        for path in sources
    }
    assert {path: roots for path, roots in outside.items() if roots} == {}
