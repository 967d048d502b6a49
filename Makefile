# The two commands of the README: `make test` and `make report`.
# Both create .venv on first use and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned: 2.14.1 with torchvision 0.29.1 lie on local disk here.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed-stamp

.PHONY: test report install sparse-extra clean

$(STAMP): pyproject.toml constraints.txt requirements-extra.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(TORCH_PINS)
	$(PIP) install -q -c constraints.txt -e '.[test,vision]' -r requirements-extra.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

report: $(STAMP)
	$(VENV)/bin/sparselp report --out report

# Optional extra: torch-scatter and torch-sparse, built from source against the
# installed torch (about 11 minutes; --no-cache-dir so that a wheel built for
# another torch is never reused).
sparse-extra: $(STAMP)
	$(PIP) install --no-cache-dir --no-build-isolation -c constraints.txt torch-scatter torch-sparse

clean:
	rm -rf $(VENV) report results
