# Task runner. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export MLFLOW_DISABLE_TELEMETRY ?= true
export DISABLE_PANDERA_IMPORT_WARNING ?= True
export PYTHONWARNINGS ?= ignore::DeprecationWarning,ignore::FutureWarning

SYNTHETIC := data/synthetic/sessions.csv

.PHONY: help install browser run data validate score serve test test-slow lint format typecheck bench ui clean \
	tracking-server tracking-server-stop add-reviewer bench-tuning

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-21s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e ".[dev,bench,team]"
	@touch $@

install: $(VENV)/.installed ## Create .venv and install the project with the tested versions

.PHONY: spark bench-spark
$(VENV)/.spark-installed: $(VENV)/.installed scripts/ensure_java.sh
	@bash scripts/ensure_java.sh
	$(PY) -m pip install -q -c requirements.lock -e ".[dev,bench,team,spark]"
	@touch $@

spark: $(VENV)/.spark-installed ## Java 17 (Debian's openjdk-17-jre-headless) and pyspark, for engine=spark

$(SYNTHETIC): | $(VENV)/.installed
	$(PY) pipelines/simulate.py

data: $(SYNTHETIC) ## Generate the built-in synthetic data set (if missing)

run: install data ## Run the whole pipeline on the built-in synthetic data
	$(PY) pipelines/run.py data=synthetic

score: install data ## Score the built-in caseload's ongoing clients (outputs/scores/)
	$(PY) pipelines/score.py data=synthetic output=outputs/scores/caseload.csv

# MLflow's serve downloads the model into a temporary folder it never removes: one of our own,
# removed when the server stops
serve: install ## Serve the registered @champion over HTTP on 127.0.0.1:5055 (TRACKING_URI=... for a server)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH TMPDIR=$$tmp \
	  MLFLOW_TRACKING_URI=$${TRACKING_URI:-sqlite:///$(CURDIR)/mlruns/mlflow.db} \
	  $(VENV)/bin/mlflow models serve -m "models:/alliance-dropout@champion" \
	  --env-manager local -h 127.0.0.1 -p 5055

validate: install data ## Validate the built-in data set only
	$(PY) pipelines/validate.py data=synthetic

test: install browser spark lint ## Lint, type-check and run the test suite (slow ones: make test-slow)
	$(PY) -m pytest -n 2 --dist loadgroup -q

browser: ## Install headless Chromium for the report's browser test (Debian package)
	@bash scripts/ensure_chromium.sh

test-slow: install ## Run the slow tests only
	$(PY) -m pytest -q -m slow

lint: install ## ruff lint + format check + mypy + import-linter layer contracts
	$(VENV)/bin/ruff check src pipelines tests benchmarks
	$(VENV)/bin/ruff format --check src pipelines tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install ## Format the code with ruff
	$(VENV)/bin/ruff check --fix src pipelines tests benchmarks
	$(VENV)/bin/ruff format src pipelines tests benchmarks

bench: install data ## Benchmarks: features, caseload scoring, training (landmark vs hazard; prints figures)
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_scoring.py
	$(PY) benchmarks/bench_training.py

bench-spark: spark ## Benchmark: 1M clients on Spark local[2] against the local scorer (CLIENTS=...)
	$(PY) benchmarks/bench_spark.py --clients $${CLIENTS:-1000000}

bench-tuning: install ## Benchmark: one shared Optuna study searched by 1, 2 and 4 workers
	$(PY) benchmarks/bench_tuning.py

ui: install ## Open the MLflow UI on the local store (http://127.0.0.1:5000)
	@mkdir -p mlruns
	$(VENV)/bin/mlflow server --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
	  --default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port 5000 --workers 1

tracking-server: install ## Team MLflow server (PostgreSQL, basic-auth) on 127.0.0.1:5050 (TRACKING_PORT=...)
	@bash scripts/tracking_server.sh start

tracking-server-stop: ## Stop the team tracking server (MLflow and PostgreSQL, by recorded PIDs)
	@bash scripts/tracking_server.sh stop

# USER= on the command line only (the environment's USER is the login name, not a reviewer)
REVIEWER := $(if $(filter command line,$(origin USER)),$(USER),)
add-reviewer: install ## USER=name: read-only user on the team server (password: env REVIEWER_PASSWORD)
	@test -n "$(REVIEWER)" || { echo "usage: REVIEWER_PASSWORD=... make add-reviewer USER=name" >&2; exit 2; }
	@$(PY) scripts/add_reviewer.py "$(REVIEWER)" --uri "$${TRACKING_URI:-http://127.0.0.1:$${TRACKING_PORT:-5050}}"

clean: ## Remove generated outputs (keeps .venv and mlruns)
	rm -rf outputs .pytest_cache .mypy_cache .ruff_cache

.PHONY: screenshots
screenshots: install ## Screenshots of the MLflow UI and the caseload report (docs/screenshots/; after run + score)
	$(PY) scripts/screenshots.py --out docs/screenshots
