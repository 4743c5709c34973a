# Bookshelf Serverless. Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAGE ?= dev
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt requirements-build.txt | cksum | cut -d' ' -f1)
# Python's own default: .pyc files (and pytest's rewritten test modules) are cached in __pycache__/
# (git-ignored; the Lambda zip is staged without them). A machine that sets PYTHONDONTWRITEBYTECODE
# makes every process compile the project again: each xdist worker's collection, each emulator,
# runner and sandbox process (docs/LOCAL.md, "Parallel and in any order").
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run sample-images test test-e2e test-unit test-scale test-contract test-localstack test-deployed lint bench package deploy clean chromium screenshot

$(STAMP): requirements.txt requirements-dev.txt requirements-build.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# FRESH=1 starts with an empty emulator (the state is kept in .local/ otherwise).
# `exec`: no shell in between, so make's SIGTERM reaches devtools.local, which also watches make
# for the signals make does not pass on (SIGHUP, SIGINT) and stops everything in order.
run: install
	exec env FRESH=$(FRESH) $(PY) -m devtools.local

# cover.jpg, photo.jpg and new.png in this directory, for the examples of README.md and docs/ (drawn with Pillow).
sample-images: install
	$(PY) -m devtools.samples

# The tiers (docs/LOCAL.md, "Tests and the emulator"): unit (no AWS), functional (the app on the emulator), integration
# (make run's parts, a browser), tooling (emulator, runtime, deploy tools). In parallel: each xdist
# worker has its own embedded emulator and resource prefix; tests go one by one to whichever worker
# is free, but a file marked `xdist_group` (a costly module fixture: a package, a deploy, make run)
# goes whole to one worker (--dist loadgroup). More workers than cores: most of a test's time is
# spent waiting on queues and processes. In random order (pytest-randomly prints its seed;
# `--randomly-seed=N` replays an order).
# `tests` rather than the four tiers by name: a file left at the top still runs (and
# tests/unit/test_layout.py fails until it is given its tier); tests/deployed is not collected.
TIERS := tests/unit tests/functional tests/integration tests/tooling
TEST_WORKERS ?= 6
# Schemathesis builds its cases from the OpenAPI document when the file is collected (4 s of CPU in
# each of make test's seven processes), only to have `-m "not contract"` deselect them.
NOT_COLLECTED := --ignore=tests/integration/test_contract.py
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadgroup

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests/deployed/conftest.py  # the second "conftest": see pyproject's [tool.mypy]
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow and not contract and not e2e" $(NOT_COLLECTED) tests

# The end-to-end tests: the dashboard in Chromium (tests/integration/test_dashboard_browser.py) and
# whole `make run` stacks killed, restarted and stopped by signals (test_make_run.py). Out of
# `make test` for its time on 2 cores (docs/LOCAL.md, "Commands", has the figures); CI runs them
# (.ci/run). Three workers: make run's stacks one at a time on one, the browser's tests on the others.
test-e2e: install chromium
	$(PY) -m pytest -n 3 --dist loadgroup -m e2e tests/integration

# The fast tier alone: pure logic over in-memory stores, with AWS unreachable (nothing listens on :9).
test-unit: install
	AWS_ENDPOINT_URL=http://127.0.0.1:9 $(PY) -m pytest tests/unit

# The scale tests (20,000 subscribers, the shared SES send rate, a 500-book import): long, so not part of `make test`
# (CI runs both, .ci/run). One process in a fixed order: the tests measure a shared send rate.
test-scale: install
	$(PY) -m pytest -p no:randomly -m slow $(TIERS)

# Schemathesis against the running API (the local gateway over HTTP, the embedded emulator): every
# operation of GET /openapi.json, valid and invalid cases, CONTRACT_EXAMPLES per operation and mode.
# Alone (it writes books and redrives the DLQs); prints its cases, operations and time.
test-contract: install
	$(PY) -m pytest -p no:randomly -m contract tests/integration/test_contract.py

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it never downloads a browser).
# Installed as root with apt-get when missing; elsewhere those tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } \
	  || echo "Chromium is not installed and cannot be here: the dashboard's browser tests will skip"

# Regenerate the dashboard screenshots shown in docs/DASHBOARD.md (taken by the browser tests).
screenshot: install chromium
	DASHBOARD_SCREENSHOT=docs/dashboard.png $(PY) -m pytest tests/integration/test_dashboard_browser.py -k "screenshot"

# The suite against LocalStack, installed and run by the project (host mode, no Docker, in its own
# venv on Python >= 3.12, cached in ~/.cache/bookshelf-serverless); DynamoDB and SES on the
# embedded emulator. It prints which service came from where, the skips' reasons and its time.
# The tiers that reach AWS (the unit tier reaches none: `make test-unit` runs it with AWS
# unreachable), LOCALSTACK_WORKERS xdist workers sharing one LocalStack and one emulator, each
# with its own resource prefix; in a fixed order (-p no:randomly) so a failure replays.
AWS_TIERS := tests/functional tests/integration tests/tooling
LOCALSTACK_WORKERS ?= 3
test-localstack: install
	$(PY) -m devtools.backends.localstack test -p no:randomly -n $(LOCALSTACK_WORKERS) --dist loadgroup \
	  -m "not slow and not contract" $(AWS_TIERS)

# The real artefact, deployed: MiniStack (installed by the project into a cached venv whose Python is
# the functions' runtime, started on a free port), `make deploy`'s tooling into it, then tests/deployed
# over the deployed API Gateway URL. It prints the deploy time, the suite's time and POST-to-ready.
test-deployed: install
	$(PY) -m devtools.backends.ministack test -p no:randomly

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests/deployed/conftest.py  # the second "conftest": see pyproject's [tool.mypy]

bench: install
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.run_all

# One CloudFormation/SAM template with the functions and every resource (docs/DEPLOY.md). The zip is
# built under the Lambda runtime's Python 3.13 (.venv-build, made on first use; infra/lambda_build.py).
package: install
	$(PY) -m infra --stage $(STAGE) --package build/package-$(STAGE)
	$(VENV)/bin/cfn-lint build/package-$(STAGE)/sam.json
	$(PY) -m infra.zipcheck build/package-$(STAGE)/deployment.zip

# Resources, dashboard and alarms, then `chalice deploy` (AWS_ENDPOINT_URL for LocalStack).
deploy: install
	$(PY) -m devtools.deploy --stage $(STAGE)

clean:
	rm -rf $(VENV) .venv-build .venv-build.lock .pytest_cache .ruff_cache .local build
