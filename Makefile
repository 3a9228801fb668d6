# `make run` sets up and starts the demo; `make test` sets up and runs the whole suite.
# `make serve` and `make poll` run the dashboard in production; `make loadtest` measures it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SERVICES ?= 60
LOADTEST_ARGS ?=

.PHONY: install install-test run serve poll loadtest require-secret-key wrk test lint migrate clean \
	messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# The translations Django reads, compiled from each locale/*/LC_MESSAGES/django.po by Babel (pure
# Python: no GNU gettext needed). Never committed; rebuilt whenever the .po changes.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel --quiet compile -i $< -o $@

install: $(VENV)/.installed $(CATALOGS)

# After changing texts: new ones into every catalog (untranslated), then translate them there.
messages: install
	$(BIN)/python locale/catalog.py update
	$(BIN)/python locale/catalog.py check || true

install-test: $(VENV)/.installed-test wrk $(CATALOGS)
	@# Browser tests drive Debian's Chromium; Playwright never downloads a browser.
	@test -x /usr/bin/chromium || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@# A Chinese font, so the Chinese pages' screenshots show characters, not boxes.
	@test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; }

# The load test's HTTP load generator, Debian's package.
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py demo --port $(PORT) --services $(SERVICES)

# Production: gunicorn (two workers per core plus one, see gunicorn.conf.py) serving hashed,
# compressed static files. Run `make poll` (or `manage.py poll_services`) beside it.
require-secret-key:
	@test "$${#SECRET_KEY}" -ge 50 || { \
	  echo "make serve: set SECRET_KEY to a random string of at least 50 characters, the same" \
	    "for every web worker, e.g." >&2; \
	  echo "  export SECRET_KEY=\"\$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')\"" >&2; \
	  exit 2; }

serve: require-secret-key migrate
	DASHBOARD_HASHED_STATIC=1 $(BIN)/python manage.py collectstatic --noinput -v0
	DASHBOARD_HASHED_STATIC=1 exec $(BIN)/gunicorn --bind $(HOST):$(PORT)

poll: migrate
	exec $(BIN)/python manage.py poll_services

# The served dashboard under load while the poller writes: `make loadtest LOADTEST_ARGS=...`.
loadtest: install wrk
	$(BIN)/python manage.py loadtest $(LOADTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# The layer contracts in pyproject.toml: a wrong arrow between packages fails here.
	$(BIN)/lint-imports

test: install-test lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var
