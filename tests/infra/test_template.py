"""The template as the tools see it: cfn-lint, `sam validate --lint`, `sam build` and checkov.

Each tool runs as a subprocess from this virtualenv (nothing needs to be on PATH). `sam build` runs
once per session into a temporary folder; it downloads the layer's wheels for the Lambda platform
from the package index and compiles them with Pyodide from the npm registry, so it needs both and
node, but no Docker and no local python3.13.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.template import load_template

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "template.yaml"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
FUNCTIONS = {
    "IssueTokenFunction": "issue_token",
    "SubmitFeedbackFunction": "submit_feedback",
    "QueryFunction": "query",
    "AdminFunction": "admin",
    "AuthorizerFunction": "authorizer",
    "MetaFunction": "meta",
}
# ELF e_machine values (the 2 bytes at offset 18 of the header).
ELF_MACHINES = {"arm64": 183, "x86_64": 62}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
RUNTIME_CACHE_TAG = "cpython-313"
RUNTIME_PYC_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"
"""importlib.util.MAGIC_NUMBER of Python 3.13 (the python3.13 runtime): a .pyc of any other version is
ignored by the runtime, which then compiles the source at every cold start."""
UNCHECKED_HASH_PYC = 0b01
"""PEP 552 flags: hash-based, source not checked (the zip and /opt do not keep the sources' mtimes)."""
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


def run(*command: str | Path, timeout: float = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Runs a tool of the virtualenv (from the repository root by default), telemetry off, fixed region."""
    environment = os.environ | {
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
    )


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def architecture(template: dict[str, Any]) -> str:
    """The one architecture of the stack: every function's and the layer's must agree."""
    architectures = set(template["Globals"]["Function"]["Architectures"])
    for logical_id in FUNCTIONS:
        architectures |= set(template["Resources"][logical_id]["Properties"].get("Architectures", []))
    layer = template["Resources"]["CoreLayer"]
    architectures |= set(layer["Properties"]["CompatibleArchitectures"]) | {
        layer["Metadata"]["BuildArchitecture"]
    }
    assert len(architectures) == 1, architectures
    return str(architectures.pop())


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("sam")
    build, cache = work / "build", work / "cache"
    # Run from the temporary folder: sam creates .aws-sam/ (cache, deps) in its working directory.
    result = run(
        BIN / "sam",
        "build",
        "--template-file",
        TEMPLATE,
        "--build-dir",
        build,
        "--cache-dir",
        cache,
        timeout=900,
        cwd=work,
    )
    assert result.returncode == 0, explain(result)
    return build


def test_cfn_lint() -> None:
    result = run(BIN / "cfn-lint", TEMPLATE)
    assert result.returncode == 0, explain(result)


def test_sam_validate_lint() -> None:
    result = run(BIN / "sam", "validate", "--lint", "--template-file", TEMPLATE)
    assert result.returncode == 0, explain(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_checkov_passes_with_justified_skips_only() -> None:
    result = run(BIN / "checkov", "-f", TEMPLATE, "--config-file", CHECKOV_CONFIG)
    assert result.returncode == 0, explain(result)
    assert "Failed checks: 0" in result.stdout, explain(result)

    lines = [line.strip() for line in CHECKOV_CONFIG.read_text().splitlines()]
    skips = [index for index, line in enumerate(lines) if re.fullmatch(r"- CKV2?_AWS_\d+", line)]
    assert skips, "no skip-check entries found"
    for index in skips:
        assert lines[index - 1].startswith("#"), f"{lines[index]} has no justification comment above it"


def test_functions_and_layer_match(template: dict[str, Any], architecture: str) -> None:
    """Settings every function must have, whether set in Globals or on the function."""
    globals_ = template["Globals"]["Function"]
    for logical_id, folder in FUNCTIONS.items():
        resource = template["Resources"][logical_id]
        properties = globals_ | resource["Properties"]
        assert properties["Runtime"] == "python3.13"
        assert properties["Handler"] == "app.lambda_handler"
        assert properties["Tracing"] == "Active"
        assert properties["CodeUri"] == f"functions/{folder}/"
        assert properties["Layers"] == [{"Ref": "CoreLayer"}]
        assert resource["Metadata"]["BuildMethod"] == "makefile"
        role = template["Resources"][properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        managed = {arn["Fn::Sub"].rsplit("/", 1)[-1] for arn in role["ManagedPolicyArns"]}
        assert managed == {"AWSLambdaBasicExecutionRole", "AWSXRayDaemonWriteAccess"}, logical_id
        log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert template["Resources"][log_group]["Type"] == "AWS::Logs::LogGroup"
        makefile = (ROOT / "functions" / folder / "Makefile").read_text()
        assert f"build-{logical_id}:" in makefile
    layer = template["Resources"]["CoreLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    assert f"LAMBDA_ARCH ?= {machine}" in (ROOT / "layers" / "core" / "Makefile").read_text()


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def test_sam_build_layer(build_dir: Path, architecture: str) -> None:
    site = build_dir / "CoreLayer" / "python"
    assert (site / "feedback_core" / "__init__.py").is_file()
    assert (site / "feedback_core" / "py.typed").is_file()
    binaries = [
        *site.glob("cryptography/hazmat/bindings/_rust*.so"),
        *site.glob("pydantic_core/_pydantic_core*.so"),
    ]
    assert len(binaries) == 2, binaries
    for binary in binaries:
        assert _elf_machine(binary) == ELF_MACHINES[architecture], binary
    assert all("cpython-313" in so.name or "abi3" in so.name for so in binaries)
    for package in ("aws_lambda_powertools", "pydantic", "jwt", "cryptography"):
        assert (site / package).is_dir(), package
    for package in RUNTIME_PROVIDED:
        assert not (site / package).exists(), f"{package} comes from the Lambda runtime, not the layer"


def test_sam_build_layer_ships_bytecode_for_the_runtime(build_dir: Path, template: dict[str, Any]) -> None:
    assert template["Resources"]["CoreLayer"]["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    site = build_dir / "CoreLayer" / "python"
    sources = sorted(site.rglob("*.py"))
    assert len(sources) > 100
    assert site / "feedback_core" / "services.py" in sources
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{RUNTIME_CACHE_TAG}.pyc"
        header = compiled.read_bytes()[:16]
        assert header[:4] == RUNTIME_PYC_MAGIC, f"{compiled}: magic {header[:4]!r}"
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_PYC, compiled
    compiled_files = set(site.rglob("*.pyc"))
    assert all(f".{RUNTIME_CACHE_TAG}." in path.name for path in compiled_files)
    assert len(compiled_files) == len(sources)


def test_sam_build_functions(build_dir: Path) -> None:
    built = (build_dir / "template.yaml").read_text()
    total = sum(file.stat().st_size for file in (build_dir / "CoreLayer").rglob("*") if file.is_file())
    for logical_id, folder in FUNCTIONS.items():
        artifacts = build_dir / logical_id
        sources = sorted(path.name for path in (ROOT / "functions" / folder).glob("*.py"))
        assert sorted(path.name for path in artifacts.glob("*.py")) == sources
        assert not (artifacts / "Makefile").exists()
        assert f"CodeUri: {logical_id}" in built
        total_function = total + sum(file.stat().st_size for file in artifacts.rglob("*") if file.is_file())
        assert total_function < LAMBDA_UNZIPPED_LIMIT
    assert (build_dir / "MetaFunction" / "openapi.json").is_file()
    # The docs page's files (vendored Swagger UI, its manifest, the page script), byte for byte.
    docs_ui = ROOT / "functions" / "meta" / "docs_ui"
    for source in docs_ui.iterdir():
        assert (build_dir / "MetaFunction" / "docs_ui" / source.name).read_bytes() == source.read_bytes()
    # The widget and the dashboard (built by `make web`), byte for byte.
    web = ROOT / "functions" / "meta" / "web"
    for source in web.iterdir():
        assert (build_dir / "MetaFunction" / "web" / source.name).read_bytes() == source.read_bytes()
