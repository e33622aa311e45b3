# People, CI (.ci/run) and pre-commit all use these targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# An editable install leaves the project's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE
# is set every command compiles them again: about 16 ms of each client command's start-up.
COMPILE = $(BIN)/python -m compileall -q ingest workers

.PHONY: run test lint typecheck unit install install-dev eval eval-dedup bench-speed bench-dedup bench-tagger bench-feeds bench-web screenshots profile clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	# an old pip cannot resolve the lxml[html-clean] extra that trafilatura needs
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(COMPILE)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(COMPILE)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: everything in the foreground (embedded Redis unless REDIS_URL is set); Ctrl-C stops it
run: install
	$(BIN)/ingest up

## test: lint, type-check and the whole test suite (unit, real Redis, end to end with a real worker)
test: install-dev lint typecheck unit

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

unit: install-dev
	$(BIN)/pytest

## eval: the shared end-to-end quality benchmark on the dev corpus (needs ../shared)
eval: install
	$(BIN)/python ../shared/tools/evalbench.py quality --corpus ../shared/eval/dev-corpus.jsonl

## eval-dedup: dedup judgement on real articles from ../shared (copy kinds, false duplicates)
eval-dedup: install-dev
	$(BIN)/python benchmarks/eval_dedup.py

bench-speed: install
	$(BIN)/python ../shared/tools/evalbench.py speed --aeb ../shared/data/aeb

bench-dedup: install-dev
	$(BIN)/python benchmarks/bench_dedup.py

bench-tagger: install-dev
	$(BIN)/python benchmarks/bench_tagger.py

## bench-feeds: 10,000 local feeds polled by a worker, cost per entry, scheduler tick at 100,000 feeds
bench-feeds: install-dev
	$(BIN)/python benchmarks/bench_feeds.py

## bench-web: dashboard render times with 100,000 articles, a /metrics scrape with 10,000 feeds
bench-web: install-dev
	$(BIN)/python benchmarks/bench_web.py

## screenshots: run the browser tests and keep a PNG of each view under docs/screenshots/
screenshots: install-dev
	INGEST_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/test_browser.py -q

## profile: CPU per article by part (pipeline stages, Celery, poll client, Redis) for one poll of a local
## site of the aeb pages (needs ../shared); e.g. make profile ARGS="--articles 10000 --feeds 50 --no-cprofile"
profile: install-dev
	$(BIN)/python benchmarks/profile_run.py $(ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
