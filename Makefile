# The course's commands. `make test` and `make book` create the environment when it is missing.
SHELL := /bin/bash
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Fixed thread counts: BLAS and torch sum in a different order with another count, and the
# last digits of printed numbers would change.
export OMP_NUM_THREADS := 2
export MKL_NUM_THREADS := 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help env book test unit nbval notebooks notebooks-all grade exercises lock clean book-check drift benchmarks book-time install-cells

help:
	@echo "make test       create .venv if missing, then run every check (TEST_WORKERS=0: in one process)"
	@echo "make book       create .venv if missing, build the book into _build/html"
	@echo "make notebooks  re-execute the chapters whose source changed (ALL=1 for all)"
	@echo "make grade CHAPTER=02 SUBMISSIONS=dir [OUT=grades.csv]   grade a folder of submissions"
	@echo "make exercises  regenerate every exercise from its solution (solutions/NN_name.py)"
	@echo "make book-check build the book and open every page in headless Chromium, offline"
	@echo "make drift      fresh environment with the newest allowed packages; run every chapter and solution (needs the package index)"
	@echo "make benchmarks run benchmarks/bench_*.py, writing benchmarks/results/ (BOOK=1: also re-execute the book)"
	@echo "make book-time  whole-book execution time against the budgets (EXECUTE=1 to measure again)"
	@echo "make install-cells  rewrite every notebook's Colab install cell from _config.yml"

env: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-lock.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

book: env
	$(PY) scripts/build_book.py
	@echo "Open _build/html/index.html"

# One pytest run: unit tests, grading, pairing, the book build, and nbval on every chapter.
# Two workers (TEST_WORKERS=0 for one process): measured on 2 cores, 16 minutes instead of 34,
# with the same results. --dist loadscope keeps each notebook's cells, and each test module,
# in one worker and in order; the book is built once and shared (tests/book_build.py).
TEST_WORKERS ?= 2
test: env
	PYTHONPATH=. $(PY) -m pytest tests notebooks --nbval --nbval-current-env \
	  --nbval-sanitize-with sanitize.cfg -p tests.plugins.nbval_figures -p tests.plugins.browser_notice \
	  -n $(TEST_WORKERS) --dist loadscope --durations=15 $(PYTEST_ARGS)

unit: env
	$(PY) -m pytest tests -m "not book"

nbval: env
	PYTHONPATH=. $(PY) -m pytest notebooks --nbval --nbval-current-env \
	  --nbval-sanitize-with sanitize.cfg -p tests.plugins.nbval_figures

notebooks: env
	$(PY) scripts/execute_notebooks.py $(if $(ALL),--all,) $(NB)

grade: env
	$(PY) -m course_lib.grading $(CHAPTER) $(SUBMISSIONS) --out $(or $(OUT),grades.csv)

exercises: env
	$(PY) scripts/make_exercises.py

book-check: book
	$(PY) scripts/check_book.py _build/html

# Not part of `make test`: it needs the package index and installs a second environment.
drift:
	$(PYTHON_SYS) scripts/drift_check.py

benchmarks: env
	$(PY) scripts/run_benchmarks.py $(if $(BOOK),--book,)

book-time: env
	$(PY) benchmarks/bench_book.py $(if $(EXECUTE),--execute,)

install-cells: env
	$(PY) scripts/sync_install_cells.py --write

lock: env
	(echo "# Exact versions for CI and reproducible outputs (pip freeze of a working environment)."; \
	 echo "# Regenerate with: make lock"; \
	 $(PY) -m pip freeze --exclude-editable) > requirements-lock.txt

clean:
	rm -rf _build .pytest_cache
