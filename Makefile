# One entry point for everything: `make run` and `make test` create .venv when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY ?= 0

include mk/ddblocal.mk

.PHONY: setup run events test fuzz test-sdk test-unit test-store test-integration test-ddblocal test-e2e test-local test-infra lint typecheck build bench openapi web vendor-axe vendor-docs-ui smoke screenshots clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole service on 127.0.0.1:$(PORT) (default 3000), in the foreground; Ctrl-C stops it.
# `make run PERSIST=.local/data` keeps the data across restarts (DynamoDB Local); RUN_ARGS adds options.
run: setup ddblocal
	$(BIN)/python -m local $(if $(PORT),--port $(PORT)) $(if $(PERSIST),--persist $(PERSIST)) $(RUN_ARGS)

# Prints the running local stack's events as they come (bus and SNS topic); EVENTS_ARGS=--once stops
# when the queues are empty. `$(BIN)/feedbackctl --output json events tail` prints whole messages.
events: setup
	$(BIN)/feedbackctl events tail $(EVENTS_ARGS)

lint: setup
	$(BIN)/ruff check layers functions clients scripts local bench tests
	$(BIN)/ruff format --check layers functions clients scripts local bench tests

typecheck: setup
	$(BIN)/mypy layers/core/feedback_core functions clients/python/feedback_client clients/python/feedbackctl \
		clients/operator/feedback_operator local scripts/smoke.py scripts/build_web.py scripts/vendor_axe.py \
		scripts/screenshots.py

test: lint typecheck ddblocal
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The property tests with freshly drawn examples (make test replays a fixed set); FUZZ_RUNS rounds.
FUZZ_RUNS ?= 5
fuzz: setup ddblocal
	for round in $$(seq $(FUZZ_RUNS)); do \
		HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest -q -m fuzz $(PYTEST_ARGS) || exit 1; \
	done

test-store: setup ddblocal
	$(BIN)/python -m pytest tests/store $(PYTEST_ARGS)

test-sdk: setup
	$(BIN)/python -m pytest tests/sdk $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-ddblocal: setup ddblocal
	$(BIN)/python -m pytest tests/ddblocal $(PYTEST_ARGS)

test-e2e: setup ddblocal
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

test-local: setup
	$(BIN)/python -m pytest tests/local $(PYTEST_ARGS)

test-infra: setup
	$(BIN)/python -m pytest tests/infra $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench.run

openapi: setup
	$(BIN)/python scripts/build_openapi.py

# The widget and the dashboard, from clients/web into functions/meta/web (what `sam build` packages):
# JavaScript minified with rjsmin, a manifest with each file's SHA-256. Commit the result.
web: setup
	$(BIN)/python scripts/build_web.py

# axe-core for the browser tests' accessibility checks (tests/browser/axe.py), vendored from npm at the
# version pinned in tests/browser/vendor/axe-core.json (AXE_VERSION=x.y.z moves to another). Needs npm.
vendor-axe:
	$(PYTHON) scripts/vendor_axe.py

build: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template-file template.yaml

# docs/img/demo-chat.png and docs/img/dashboard.png from a local stack of its own, with a month of demo
# feedback; SCREENSHOTS_ARGS="--state-dir .local" uses the stack `make run` started instead.
screenshots: setup ddblocal
	$(BIN)/python -m scripts.screenshots $(SCREENSHOTS_ARGS)

# Smoke test of a deployed stack (docs/DEPLOY.md): `make smoke API=<ApiUrl output>` with FEEDBACK_API_KEY
# set; SMOKE_TOPIC_ARN=<EventsTopicArn output> also watches an event arrive; SMOKE_ARGS adds options.
smoke: setup
	$(BIN)/python scripts/smoke.py $(if $(API),--api "$(API)") $(SMOKE_ARGS)

# Swagger UI for GET /v1/docs, vendored from npm (swagger-ui-dist): fetches the exact version pinned in
# functions/meta/docs_ui/manifest.json (DOCS_UI_VERSION=x.y.z moves to another one), copies the files
# the page needs and rewrites the manifest with their SHA-256. Needs npm and the registry; nothing else.
DOCS_UI_FILES := swagger-ui-bundle.js swagger-ui.css swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE
define VENDOR_DOCS_UI
import hashlib, json, os, pathlib, subprocess, sys, tarfile, tempfile

folder = pathlib.Path("functions/meta/docs_ui")
manifest_path = folder / "manifest.json"
previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
wanted = os.environ.get("DOCS_UI_VERSION") or previous.get("version")
if not wanted:
    sys.exit("no version pinned yet: make vendor-docs-ui DOCS_UI_VERSION=x.y.z")
names = sorted(os.environ["DOCS_UI_FILES"].split())
with tempfile.TemporaryDirectory() as work:
    packed = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", work, f"swagger-ui-dist@{wanted}"],
        check=True, capture_output=True, text=True,
    )
    pack = json.loads(packed.stdout)[0]
    if pack["version"] == previous.get("version") and pack["integrity"] != previous.get("integrity"):
        sys.exit(f"swagger-ui-dist {pack['version']} changed on the registry: {pack['integrity']}")
    with tarfile.open(pathlib.Path(work) / pack["filename"]) as archive:
        contents = {name: archive.extractfile(f"package/{name}").read() for name in [*names, "package.json"]}
package = json.loads(contents.pop("package.json"))
for stale in set(previous.get("files", {})) - set(names):
    (folder / stale).unlink(missing_ok=True)
for name, content in contents.items():
    (folder / name).write_bytes(content)
manifest = {
    "package": pack["name"],
    "version": pack["version"],
    "integrity": pack["integrity"],
    "license": package["license"],
    "license_file": "LICENSE",
    "files": {name: hashlib.sha256(contents[name]).hexdigest() for name in names},
}
manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
print(f"vendored {pack['name']} {pack['version']} into {folder}", file=sys.stderr)
endef
export VENDOR_DOCS_UI DOCS_UI_FILES

vendor-docs-ui:
	$(PYTHON) -c "$$VENDOR_DOCS_UI"

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
