# shiftright — the two commands: `make run` brings the pipeline up, `make test` tests it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run up down status test unit integration bench bench-worker lint typecheck docs config-doc clean

run: up

up: $(STAMP)
	$(BIN)/shiftright up

down: $(STAMP)
	$(BIN)/shiftright down

status: $(STAMP)
	$(BIN)/shiftright status

# Two pytest processes, each module whole in one of them (its module-scoped pipeline is
# built once); each process starts its own broker and warehouse. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadfile --durations=25

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

bench: $(STAMP)
	$(BIN)/python -m bench.pipeline

bench-worker: $(STAMP)
	$(BIN)/python -m bench.streams_worker

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

config-doc: $(STAMP)
	$(BIN)/python -m shiftright_server.infra.settings_doc

# ruff, and the layer order (schemas -> configuration/clients -> producers|streams|sinks -> CLI/ops)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest tests/unit/test_layers.py -q -p no:cacheprovider

# mypy sees each folder under the name it installs as (see [tool.mypy] in pyproject.toml)
TYPECHECK := build/typecheck
typecheck: $(STAMP)
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/shiftright_server
	for folder in schemas producers streams sinks dashboard infra; do \
	  ln -s ../../../$$folder $(TYPECHECK)/shiftright_server/$$folder; done
	ln -s ../../producers/sdk/src/shiftright $(TYPECHECK)/shiftright
	ln -s ../../tests $(TYPECHECK)/tests
	ln -s ../../bench $(TYPECHECK)/bench
	$(BIN)/mypy

$(STAMP): pyproject.toml producers/sdk/pyproject.toml
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  echo "shiftright needs Java 17+ and Maven to run Apache Kafka from Maven Central jars."; \
	  echo "On Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless maven"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e producers/sdk
	touch $(STAMP)

clean:
	rm -rf $(VENV) .shiftright .pytest_cache site
