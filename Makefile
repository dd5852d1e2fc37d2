# The two commands that matter: `make run` and `make test`. Both do all setup themselves.
# Paths are relative to this Makefile, so `make -f path/to/Makefile run` works from any directory
# (certificates and state go to the current directory, as with `aws-iot-mock serve`).
ROOT   := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV   ?= $(ROOT).venv
PY     := $(VENV)/bin/python
CONFIG ?= $(ROOT)config/default.yaml
ARGS   ?=
# `make run` installs what running needs; everything else also installs the dev tools.
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed

.PHONY: run test lint certs bench stress fuzz docker docker-test clean bytecode

# Recipes are silent and progress goes to stderr: `make run | jq .` must see only log lines.
$(VENV)/.created:
	@echo "aws-iot-mock: creating $(VENV) (first run only)" >&2
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip >&2
	@touch $@

$(RUN_STAMP): $(ROOT)pyproject.toml | $(VENV)/.created
	@echo "aws-iot-mock: installing aws-iot-mock and its runtime dependencies into $(VENV)" >&2
	@$(PY) -m pip install --quiet -e '$(ROOT)' >&2
	@touch $@

$(STAMP): $(ROOT)pyproject.toml | $(VENV)/.created
	@echo "aws-iot-mock: installing aws-iot-mock with its dev tools into $(VENV)" >&2
	@$(PY) -m pip install --quiet -e '$(ROOT)[dev]' >&2
	@touch $@ $(RUN_STAMP)

# Precompiled bytecode: with PYTHONDONTWRITEBYTECODE set (as in some CI and sandbox images)
# Python never caches it and recompiles every module at each start (~150 ms here); existing .pyc
# files are still read. compileall skips files that are up to date.
bytecode: $(RUN_STAMP)
	@$(PY) -m compileall -q $(ROOT)broker >&2

## run: set up, create the local CA and a demo device on first run, and serve in the foreground
run: $(RUN_STAMP) bytecode
	@$(PY) -m aws_iot_mock serve --config $(CONFIG) --demo-device $(ARGS)

## test: set up, then the whole test suite
## (WORKERS: pytest-xdist processes, `auto` = one per core; WORKERS=0 runs in this process)
WORKERS ?= auto
test: $(STAMP)
	cd $(ROOT) && $(PY) -m pytest -n $(WORKERS) $(ARGS)

## lint: ruff (format and rules) and mypy --strict
lint: $(STAMP)
	cd $(ROOT) && $(VENV)/bin/ruff format --check broker tests bench stress fuzz
	cd $(ROOT) && $(VENV)/bin/ruff check broker tests bench stress fuzz
	cd $(ROOT) && $(VENV)/bin/mypy

## certs: create the local root CA, server certificates and the demo device (idempotent)
certs: $(RUN_STAMP)
	$(PY) -m aws_iot_mock init --config $(CONFIG) --demo-device

## bench: ours vs Mosquitto vs amqtt, same TLS, same certs (QUICK=1: < 2 min); see bench/README.md
QUICK ?=
bench: $(STAMP) bytecode
	cd $(ROOT) && sh bench/ensure-deps.sh $(PY)
	cd $(ROOT) && $(PY) -m compileall -q bench
	cd $(ROOT) && $(PY) -m bench.run $(if $(filter 1 yes true,$(QUICK)),--quick)

## stress: hostile clients and a flaky machine against ours (Mosquitto beside it); fails on a miss
STRESS ?=
stress: $(STAMP) bytecode
	cd $(ROOT) && sh bench/ensure-deps.sh $(PY)
	cd $(ROOT) && $(PY) -m stress.run $(STRESS)

## fuzz: coverage-guided fuzzing (atheris) of the MQTT codec, the ClientHello reader and topic
## validation, one target after the other, FUZZ_SECONDS each; see fuzz/run.py
FUZZ_SECONDS ?= 45
FUZZ_STAMP := $(VENV)/.fuzz-installed
$(FUZZ_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '$(ROOT)[dev,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	cd $(ROOT) && $(PY) -m fuzz.run --seconds $(FUZZ_SECONDS)

## docker: build the images aws-iot-mock and aws-iot-mock-sdk-client (needs a Docker engine; without
## Docker Hub, on a local Debian base made once with debootstrap); see docs/docker.md
docker: $(RUN_STAMP)
	cd $(ROOT) && PYTHON=$(PY) sh docker/build.sh

## docker-test: build the images, then run them end to end (tests/test_docker.py; needs dockerd,
## docker-compose and mosquitto-clients; `make test` skips these tests)
docker-test: $(STAMP)
	cd $(ROOT) && AWS_IOT_MOCK_DOCKER_TEST=1 $(PY) -m pytest -p no:cacheprovider tests/test_docker.py $(ARGS)

clean:
	cd $(ROOT) && rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
