# userservice.deploy: every build, lint and test lane. `make help` lists them.
# `make test` is the one command CI runs (through .ci/run); `make demo` is the main job.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

REPO := $(CURDIR)
# The toolchain lane: ansible-core 2.19 is the newest that runs on Python 3.11.
PYTHON ?= $(shell command -v python3.11 || echo python3.11)
SANITY_PYTHON ?= 3.11
VENV := $(REPO)/.venv
BIN := $(VENV)/bin
# The venv is refreshed when the content of a requirements file changes, and only then.
REQ_HASH := $(shell cat requirements-dev.txt requirements.txt | sha256sum | cut -c1-16)
VENV_STAMP := $(VENV)/.installed-$(REQ_HASH)

COLLECTIONS := $(REPO)/build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/userservice/deploy
APP := examples/user-service
CLUSTER := hack/cluster/cluster
PY_DIRS = $(wildcard plugins tests bench hack docs/site)
INVENTORY ?= inventories/dev
DEMO_VERSIONS ?= 1.0.0 1.1.0
# End-to-end scenarios run at once (each in its own namespace).
E2E_WORKERS ?= 3

# kubectl and crictl of the local platform (built into a version-keyed cache by `make cluster`).
KUBE_BIN := $(shell $(CLUSTER) bindir 2>/dev/null)
export PATH := $(BIN):$(KUBE_BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help packages venv collections-link lint sanity unit app-test cluster cluster-down cluster-status \
	platform-test integration e2e bench test demo collection-build ee-context clean
.PHONY: coverage collection-test docs

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z0-9_-]*:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------------------------------------
# Toolchain

venv: $(VENV_STAMP) ## Create .venv from requirements-dev.txt (only when the requirements changed)

$(VENV_STAMP):
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

collections-link: ## Link build/collections/ansible_collections/userservice/deploy to this checkout
	@mkdir -p $(dir $(COLLECTION_LINK))
	# Relative, so the link survives moving the checkout.
	ln -sfn ../../../.. $(COLLECTION_LINK)

# ---------------------------------------------------------------------------------------------
# Static checks

lint: venv collections-link ## ansible-lint (production), yamllint, ruff, hadolint, shellcheck, antsibull-changelog lint, pipeline validators
	@rc=0
	step() { echo "--- lint: $$1"; shift; "$$@" || { echo "--- lint: FAILED: $$*"; rc=1; }; }
	step ansible-lint ansible-lint $$([ -t 1 ] || echo --nocolor)
	step yamllint yamllint --strict .
	if [ -n "$(PY_DIRS)" ]; then
	  step "ruff check" ruff check $(PY_DIRS)
	  step "ruff format" ruff format --check $(PY_DIRS)
	else echo "--- lint: ruff: no Python directories yet, skipped"; fi
	# Each Dockerfile from its own directory, where its .hadolint.yaml (if any) is found. Those
	# under tests/integration are fixtures, some of them bad on purpose (image policy checks).
	mapfile -t dockerfiles < <(git ls-files -co --exclude-standard | grep -E '(^|/)(Dockerfile|Containerfile)[^/]*$$' \
	  | grep -v '^tests/integration/' || true)
	if [ $${#dockerfiles[@]} -gt 0 ]; then
	  for d in "$${dockerfiles[@]}"; do step "hadolint $$d" bash -c 'cd "$$(dirname "$$1")" && hadolint "$$(basename "$$1")"' _ "$$d"; done
	else echo "--- lint: hadolint: no Dockerfile yet, skipped"; fi
	mapfile -t scripts < <(hack/toolchain/shell-scripts hack .ci)
	if [ $${#scripts[@]} -gt 0 ]; then step "shellcheck ($${#scripts[@]} scripts)" shellcheck -x "$${scripts[@]}"
	else echo "--- lint: shellcheck: no shell scripts yet, skipped"; fi
	step antsibull-changelog antsibull-changelog lint
	# The example CI pipelines, each with its system's validator (tools cached by version under
	# ~/.cache/userservice-deploy/tools), then the proof that broken pipelines are rejected.
	step "pipeline validators" hack/toolchain/validate-pipelines
	step "pipeline validator tests" python -m pytest -p no:cacheprovider -q tests/pipelines
	exit $$rc

sanity: venv ## ansible-test sanity, offline, with zero ignore entries
	@for f in tests/sanity/ignore-*.txt; do
	  [ -e "$$f" ] || continue
	  if grep -qv '^\s*\(#\|$$\)' "$$f"; then echo "sanity: $$f has entries; this project allows none" >&2; exit 1; fi
	done
	hack/toolchain/ansible-test sanity --venv --python $(SANITY_PYTHON)

# ---------------------------------------------------------------------------------------------
# Tests that need no cluster

docs: venv collections-link ## The docs site (antsibull-docs + Sphinx, offline) in build/docs-site/html; fails on a warning or a module/role without its page
	hack/toolchain/docs-site

unit: venv collections-link ## pytest on tests/unit with the collection importable
	@if ! find tests/unit -name 'test_*.py' 2>/dev/null | grep -q .; then
	  echo "unit: no tests under tests/unit yet: nothing to run"; exit 0
	fi
	PYTHONPATH=$(COLLECTIONS)$${PYTHONPATH:+:$$PYTHONPATH} python -m pytest -p no:cacheprovider tests/unit

coverage: venv collections-link ## Unit tests of the collection and the User Service with coverage reports in build/coverage
	@mkdir -p build/coverage
	# The coverage data file goes under build/ too, not into the checkout's root.
	COVERAGE_FILE=build/coverage/.coverage PYTHONPATH=$(COLLECTIONS)$${PYTHONPATH:+:$$PYTHONPATH} python -m pytest -p no:cacheprovider \
	  --cov=ansible_collections.userservice.deploy.plugins --cov-report=term \
	  --cov-report=xml:build/coverage/collection.xml --junitxml=build/coverage/collection-junit.xml tests/unit
	cd $(APP)
	npm ci --no-audit --no-fund
	# Without source maps: Node.js 20's own coverage fails on them ("Could not report code
	# coverage"), so the report is of the compiled JavaScript under build/.
	npx tsc -p tsconfig.json --sourceMap false
	node --test --experimental-test-coverage --test-reporter=spec --test-reporter-destination=stdout \
	  --test-reporter=lcov --test-reporter-destination=$(REPO)/build/coverage/user-service.lcov build/test/*.test.js
	echo "coverage: reports in build/coverage (collection.xml: Cobertura, user-service.lcov: LCOV)"

app-test: ## npm ci && npm test for the User Service example
	@if [ ! -f $(APP)/package.json ]; then echo "app-test: no $(APP)/package.json yet: nothing to run"; exit 0; fi
	cd $(APP)
	npm ci --no-audit --no-fund
	npm test

# ---------------------------------------------------------------------------------------------
# The local platform (hack/cluster) and the tests that run against it

define need_cluster_script
	@if [ ! -x $(CLUSTER) ]; then
	  echo "$@: $(CLUSTER) is missing or not executable; it provides the local platform" >&2; exit 2
	fi
endef

cluster: ## Bring the local platform up (idempotent)
	$(need_cluster_script)
	$(CLUSTER) up

cluster-down: ## Stop everything the platform started
	$(need_cluster_script)
	$(CLUSTER) down

cluster-status: ## Show what the platform runs
	$(need_cluster_script)
	$(CLUSTER) status

platform-test: venv ## pytest tests/platform: the platform does what the project relies on
	@if [ ! -d tests/platform ]; then echo "platform-test: no tests/platform yet: nothing to run"; exit 0; fi
	python -m pytest -p no:cacheprovider tests/platform

integration: venv collections-link ## Every target under tests/integration/targets (TARGETS="a b" to choose)
	# The compose_dev target drives the docker compose plugin (built once from its Go module, cached).
	hack/toolchain/compose
	hack/toolchain/run-integration $(TARGETS)

e2e: venv collections-link ## pytest tests/e2e: whole releases under load
	@if ! find tests/e2e -name 'test_*.py' 2>/dev/null | grep -q .; then
	  echo "e2e: no tests under tests/e2e yet: nothing to run"; exit 0
	fi
	export PYTHONPATH=$(COLLECTIONS)$${PYTHONPATH:+:$$PYTHONPATH}
	# Scenarios run side by side in their own namespaces (most of their time is waiting on pods, TTLs and
	# load); the image they share is built once first. Tests marked `serial` disturb the whole platform
	# (they cut the API server off) and run alone afterwards.
	python tests/e2e/conftest.py --build-image
	python -m pytest -p no:cacheprovider -n $(E2E_WORKERS) --dist load -m "not serial" tests/e2e
	python -m pytest -p no:cacheprovider -m serial tests/e2e

bench: venv collections-link ## Run each executable file in bench/ (results go to docs/benchmarks.md)
	@mapfile -t runs < <(find bench -maxdepth 1 -type f -perm -u+x 2>/dev/null | sort)
	if [ $${#runs[@]} -eq 0 ]; then echo "bench: no executable files in bench/ yet: nothing to run"; exit 0; fi
	for b in "$${runs[@]}"; do echo "=== bench: $$b"; "$$b"; done

# ---------------------------------------------------------------------------------------------
# Aggregates

# integration+molecule: the integration targets and the roles' molecule scenarios side by side.
TEST_LANES := lint sanity unit docs app-test cluster collection-test platform-test integration+molecule e2e

packages: ## Install the Debian packages the lanes and the platform need (root; only the missing ones)
	hack/toolchain/install-packages

test: packages venv ## Every lane: lint sanity unit docs app-test, then cluster collection-test platform-test integration+molecule e2e
	# On a cold machine the platform's Go builds (tens of minutes) run while the static lanes do; the
	# cluster lane's `up` waits for them (a lock), so nothing is built twice; then the docker compose plugin
# the integration lane needs (a lock too). Their log: build/cluster-build.log.
	mkdir -p build
	{ $(CLUSTER) build; hack/toolchain/compose; } > build/cluster-build.log 2>&1 &
	MAKE="$(MAKE)" REQUIRE_CLUSTER=1 hack/toolchain/run-lanes $(TEST_LANES)

# The demo releases blue/green on dev (dev also allows rolling): the first version deploys the blue
# slot, the second is a health-gated switch to green with blue kept warm for an instant rollback.
demo: packages venv collections-link cluster ## Platform up; build, push, deploy and release 1.0.0 then 1.1.0 blue/green on dev
	for version in $(DEMO_VERSIONS); do
	  echo "=== demo: pipeline for $$version (build, push, deploy, blue/green release)"
	  ansible-playbook -i $(INVENTORY) playbooks/pipeline.yml -e user_service_release_strategy=bluegreen \
	    -e user_service_version=$$version
	done
	ansible-playbook -i $(INVENTORY) playbooks/status.yml -e user_service_release_strategy=bluegreen

.PHONY: molecule
molecule: venv collections-link ## Molecule scenarios of the roles (extensions/molecule) against the local platform (SCENARIOS="a b" to choose)
	hack/toolchain/molecule-test $(SCENARIOS)

.PHONY: compose
compose: venv collections-link ## The User Service on the local Docker engine with inventories/dev (COMPOSE_STATE=absent: down)
	hack/toolchain/compose
	ansible-playbook -i inventories/dev playbooks/compose.yml -e compose_state=$(or $(COMPOSE_STATE),present)

.PHONY: pipeline
# The eleven stages of examples/pipelines on the local platform, each printed with its time; stops at
# the approval stage (exit 3) unless APPROVE=true. Exit codes and knobs: hack/toolchain/pipeline.
pipeline: venv collections-link ## The pipeline's eleven stages on the local platform (VERSION=x.y.z APPROVE=true RESUME=true)
	$(if $(VERSION),PIPELINE_VERSION=$(VERSION)) $(if $(APPROVE),PIPELINE_APPROVE=$(APPROVE)) $(if $(RESUME),PIPELINE_RESUME=$(RESUME)) hack/toolchain/pipeline

# ---------------------------------------------------------------------------------------------
# Packaging

collection-build: venv ## ansible-galaxy collection build into build/ (+ build/userservice-deploy.tar.gz)
	@mkdir -p build
	ansible-galaxy collection build --force --output-path build .
	version=$$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
	cp build/userservice-deploy-$$version.tar.gz build/userservice-deploy.tar.gz
	ls -l build/userservice-deploy-$$version.tar.gz

ee-context: collection-build ## ansible-builder create: the execution environment's build context in build/ee
	ansible-builder create --file execution-environment.yml --context build/ee
	echo "ee-context: build it with: ansible-builder build --file execution-environment.yml --context build/ee"

# In `make test` it runs after the cluster lane (REQUIRE_CLUSTER=1), so the installed collection must reach the platform.
collection-test: venv ## Build the tarball, install it outside the checkout, use it from there; ansible-builder create
	hack/toolchain/collection-test $(if $(REQUIRE_CLUSTER),--require-cluster,)

clean: ## Remove build/ (the venv and the platform's state stay)
	rm -rf build tests/output
