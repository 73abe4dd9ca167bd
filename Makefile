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

.PHONY: help env book test unit nbval notebooks notebooks-all grade exercises lock clean

help:
	@echo "make test       create .venv if missing, then run every check (about 5 minutes on a fresh clone)"
	@echo "make book       create .venv if missing, build the book into _build/html"
	@echo "make notebooks  re-execute the chapters whose source changed (ALL=1 for all)"
	@echo "make grade CHAPTER=02 SUBMISSIONS=dir [OUT=grades.csv]   grade a folder of submissions"
	@echo "make exercises  regenerate every exercise from its solution (solutions/NN_name.py)"

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
test: env
	PYTHONPATH=. $(PY) -m pytest tests notebooks --nbval --nbval-current-env \
	  --nbval-sanitize-with sanitize.cfg -p tests.plugins.nbval_figures --durations=15

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

lock: env
	(echo "# Exact versions for CI and reproducible outputs (pip freeze of a working environment)."; \
	 echo "# Regenerate with: make lock"; \
	 $(PY) -m pip freeze --exclude-editable) > requirements-lock.txt

clean:
	rm -rf _build .pytest_cache
