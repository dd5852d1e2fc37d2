# The two commands that matter: `make run` and `make test`. Both do all setup themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONFIG ?= config/default.yaml
ARGS   ?=

.PHONY: run test lint certs bench stress fuzz docker clean bytecode

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Precompiled bytecode: with PYTHONDONTWRITEBYTECODE set (as in some CI and sandbox images)
# Python never caches it and recompiles every module at each start (~150 ms here); existing .pyc
# files are still read. compileall skips files that are up to date.
bytecode: $(STAMP)
	@$(PY) -m compileall -q broker bench

## run: set up, create the local CA and a demo device on first run, and serve in the foreground
run: $(STAMP) bytecode
	$(PY) -m aws_iot_mock serve --config $(CONFIG) --demo-device $(ARGS)

## test: set up, then the whole test suite
test: $(STAMP)
	$(PY) -m pytest $(ARGS)

## lint: ruff (format and rules) and mypy --strict
lint: $(STAMP)
	$(VENV)/bin/ruff format --check broker tests bench stress fuzz
	$(VENV)/bin/ruff check broker tests bench stress fuzz
	$(VENV)/bin/mypy

## certs: create the local root CA, server certificates and the demo device (idempotent)
certs: $(STAMP)
	$(PY) -m aws_iot_mock init --config $(CONFIG) --demo-device

## bench: ours vs Mosquitto vs amqtt, same TLS, same certs (QUICK=1: < 2 min); see bench/README.md
QUICK ?=
bench: $(STAMP) bytecode
	sh bench/ensure-deps.sh $(PY)
	$(PY) -m bench.run $(if $(filter 1 yes true,$(QUICK)),--quick)

## stress: hostile clients and a flaky machine against ours (Mosquitto beside it); fails on a miss
STRESS ?=
stress: $(STAMP) bytecode
	sh bench/ensure-deps.sh $(PY)
	$(PY) -m stress.run $(STRESS)

## fuzz: coverage-guided fuzzing (atheris) of the MQTT codec, the ClientHello reader and topic
## validation, one target after the other, FUZZ_SECONDS each; see fuzz/run.py
FUZZ_SECONDS ?= 45
FUZZ_STAMP := $(VENV)/.fuzz-installed
$(FUZZ_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	$(PY) -m fuzz.run --seconds $(FUZZ_SECONDS)

## docker: build the image (needs a Docker engine; none runs on our CI machines)
docker:
	docker build -f docker/Dockerfile -t aws-iot-mock:latest .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
