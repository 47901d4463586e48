# pbschool — `make run` serves the demo; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
MO     := pbschool/translations/en/LC_MESSAGES/messages.mo
PO     := pbschool/translations/en/LC_MESSAGES/messages.po

.PHONY: run test lint bench translations extract-messages clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "pbschool needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

$(MO): $(PO) $(STAMP)
	$(BIN)/pybabel compile -d pbschool/translations

translations: $(MO)

run: $(STAMP) $(MO)
	$(BIN)/pbschool init
	$(BIN)/pbschool demo
	@echo "serving on http://127.0.0.1:5000"
	PBSCHOOL_ENV=development $(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

# One worker a core (pytest-xdist); a test file stays on one worker, so its module fixtures (a live
# server, the browser) are made once. PYTEST_ARGS="-n 0" runs in one process.
PYTEST_ARGS ?= -n auto --dist loadfile
test: $(STAMP) $(MO)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The exam-day, points and search benchmarks against gunicorn + a throwaway PostgreSQL database, one table
# (needs wrk: apt-get install -y wrk).
bench: $(STAMP) $(MO)
	$(BIN)/python -m tests.perf.bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/bandit -q -r pbschool --severity-level high

# Re-extract every translatable string and merge it into the English catalogue.
extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -o pbschool/translations/messages.pot .
	$(BIN)/pybabel update -i pbschool/translations/messages.pot -d pbschool/translations --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache
