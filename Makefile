# Jifen: `make run` starts everything locally, `make test` runs every check. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test lint architecture format typecheck unit integration e2e infra-test synth bench deploy bootstrap token clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip>=25,<26.3"  # chalice 1.34 needs pip<26.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## start moto + demo data + the API on 127.0.0.1:$(PORT)
	$(PY) -m jifen_local.server --port $(PORT)

test: $(STAMP) lint architecture typecheck synth  ## lint, import contracts + complexity, types, synth + cfn-lint, then every test
	$(PY) -m pytest -n 2 --dist loadfile tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

architecture: $(STAMP)  ## the shape of the code: import contracts (.importlinter) and a complexity ceiling
	$(VENV)/bin/lint-imports
	$(VENV)/bin/xenon --max-absolute C --max-modules B --max-average A chalicelib

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(STAMP)
	$(VENV)/bin/mypy chalicelib

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

infra-test: $(STAMP)
	$(PY) -m pytest tests/infra

synth: $(STAMP)  ## cdk synth (offline) + cfn-lint
	bash scripts/synth.sh

bench: $(STAMP)  ## DynamoDB round trips / items per action, import time, concurrency
	$(PY) -m tests.perf.bench
	$(PY) -m tests.perf.bench_codes

bootstrap: $(STAMP)  ## create a tenant + owner in a real table: make bootstrap ARGS="tenant create ..."
	$(PY) -m chalicelib.tenancy.cli $(ARGS)

token: $(STAMP)  ## a demo member login JWT: make token OPENID=alice
	@$(PY) -m jifen_local.login_token $(OPENID)

deploy: $(STAMP)  ## deploy to the AWS account in your environment (see README "Deploy")
	cd infra && npm ci && npx cdk deploy --require-approval broadening

clean:
	rm -rf $(VENV) .local infra/cdk.out infra/node_modules chalice.out infra/chalice.out
