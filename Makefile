# buildtool make targets. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BT := $(VENV)/bin/buildtool
PY := $(VENV)/bin/python
GROUP ?=
JOBS ?= 2
GROUP_ARG := $(if $(GROUP),--group $(GROUP),)
# PLATFORM=linux/arm64: bases, build and test-images for that platform (default linux/amd64; arm64 runs
# under qemu-user-static on an amd64 host, which `make engine` registers).
PLATFORM ?=
PLATFORM_ARG := $(if $(PLATFORM),--platform $(PLATFORM),)
SMOKE_ARM64 ?= 1
REGISTRY_PORT ?= 5000
DRY_RUN ?=

.PHONY: help venv generate check lint test test-unit engine bases build test-images serve-smoke registry registry-stop publish prune clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	@# bytecode is read, not rewritten, where PYTHONDONTWRITEBYTECODE is set: compile once, not in every run
	$(VENV)/bin/python -m compileall -q buildtool
	touch $@

venv: $(VENV)/.installed ## create .venv with buildtool and the test tools

generate: venv ## write generated/ and the README images table from images.yaml + images.lock
	$(BT) generate

check: venv ## fail (exit 1, with a diff) when generated/ or README is stale
	$(BT) check

lint: venv ## ruff, hadolint on generated Dockerfiles, actionlint on .github/workflows
	$(VENV)/bin/ruff check buildtool tests bench
	$(VENV)/bin/hadolint --config .hadolint.yaml generated/nodes/*/Dockerfile
	bash scripts/actionlint.sh

test-unit: venv ## unit tests only (no engine, no network)
	$(PY) -m pytest tests/unit -q

test: venv ## the README's test command: freshness, lint, unit tests, build + verify the smoke group (amd64, then its arm64 subset), engine tests
	$(BT) check
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest tests/unit -q
	$(MAKE) --no-print-directory build GROUP=smoke
	$(MAKE) --no-print-directory test-images GROUP=smoke
	$(if $(filter 1,$(SMOKE_ARM64)),$(MAKE) --no-print-directory build test-images GROUP=smoke PLATFORM=linux/arm64,@echo "arm64 smoke skipped (SMOKE_ARM64=0)")
	$(PY) -m pytest tests/integration -q -rs

engine: ## start a Docker Engine if none answers (installs Debian's docker.io when missing)
	bash scripts/ensure-engine.sh

bases: venv engine ## make the bases of the selected group (GROUP=...)
	$(BT) bases $(GROUP_ARG) $(PLATFORM_ARG)

build: venv engine ## build the selected group's images (GROUP=..., JOBS=N, PLATFORM=linux/arm64): pin check (refreshing stale pins, announced), bases, the layer DAG
	$(BT) lock --refresh-stale
	$(BT) bases $(GROUP_ARG) $(PLATFORM_ARG) --refresh-stale && $(BT) build $(GROUP_ARG) $(PLATFORM_ARG) --jobs $(JOBS)

test-images: venv engine ## verify the selected group's built images with pytest-testinfra (GROUP=..., JOBS=N, PLATFORM=...; reports/)
	$(BT) verify $(GROUP_ARG) $(PLATFORM_ARG) --jobs $(JOBS)

registry: ## start the local test registry: Debian's docker-registry, TLS (own CA, trusted via /etc/docker/certs.d) + htpasswd, 127.0.0.1:$(REGISTRY_PORT)
	BUILDTOOL_REGISTRY_PORT=$(REGISTRY_PORT) bash scripts/registry.sh start

registry-stop: ## stop the local test registry
	BUILDTOOL_REGISTRY_PORT=$(REGISTRY_PORT) bash scripts/registry.sh stop

publish: venv engine ## push the selected group's verified images to the site's registry and write releases/ (GROUP=..., DRY_RUN=1)
	$(BT) publish $(GROUP_ARG) --verify $(if $(DRY_RUN),--dry-run,)

serve-smoke: venv engine ## model-serving smoke (POST /score) on the selected group's CPU leaves
	$(BT) serving $(GROUP_ARG)

prune: venv engine ## remove superseded content-hash tags and BuildKit cache older than a week
	$(BT) prune

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
