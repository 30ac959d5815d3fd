# Two commands on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: run test migrate workers bench clean

$(VPY):
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(VPY) app.py migrate
	$(VENV)/bin/gunicorn -c gunicorn.conf.py app:app

test: $(STAMP)
	$(VPY) -m pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(VPY) app.py migrate

workers: $(STAMP)
	$(VPY) app.py workers

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
