# The two commands of a fresh clone:
#   make run    the product on SQLite in sandbox mode: web server and worker, at http://127.0.0.1:8000/
#   make test   the whole test suite (SQLite; set DATABASE_URL=postgres://… for PostgreSQL)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test

$(VENV)/.run-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

# A local .env for sandbox mode: debug on, fresh secrets, no Meta token.
.env:
	$(PYTHON) -c 'import pathlib, secrets; t = pathlib.Path(".env.example").read_text(); \
	t = t.replace("\nSECRET_KEY=\n", "\nSECRET_KEY=" + secrets.token_urlsafe(50) + "\n", 1); \
	t = t.replace("\nDEBUG=\n", "\nDEBUG=True\n", 1); \
	t = t.replace("\nWHATSAPP_APP_SECRET=\n", "\nWHATSAPP_APP_SECRET=" + secrets.token_hex(16) + "\n", 1); \
	t = t.replace("\nWEBHOOK_VERIFY_TOKEN=\n", "\nWEBHOOK_VERIFY_TOKEN=" + secrets.token_urlsafe(24) + "\n", 1); \
	pathlib.Path(".env").write_text(t)'
	@echo "Created .env (sandbox mode). Edit it to go live."

run: $(VENV)/.run-installed .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --url http://127.0.0.1:$(PORT)/
	@echo http://127.0.0.1:$(PORT)/ > .run-url  # where `whatsapp_chatbot simulate` posts
	@trap 'kill 0' INT TERM; \
	$(PY) manage.py db_worker --queue-name '*' --interval 0.2 & \
	$(PY) manage.py runserver 127.0.0.1:$(PORT) & \
	wait

test: $(VENV)/.dev-installed
	$(VENV)/bin/pytest $(ARGS)
