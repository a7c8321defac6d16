# Quick start: `make demo`, `make test`. Everything a fresh machine needs is installed from here.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Without an NVIDIA GPU pin the CPU torch build; with one, let pip choose the CUDA build.
TORCH_PIN := $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints/cpu.txt)
# Debian packages the tests need (installed when run as root).
DEBIAN_TEST_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0 xvfb openssl espeak-ng sox

.PHONY: demo test hand-model debian-test-packages debian-demo-packages clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.server: pyproject.toml constraints/cpu.txt | $(PY)
	$(PIP) install -q $(TORCH_PIN) torch
	$(PIP) install -q $(TORCH_PIN) -e ".[server]"
	touch $@

$(VENV)/.test: pyproject.toml constraints/cpu.txt $(VENV)/.server
	$(PIP) install -q $(TORCH_PIN) -e ".[server,bench,vr,input,test]"
	touch $@

# The hand-tracking model: the two Apache-2.0 tflite files of the mediapipe==0.10.21 wheel (from PyPI), packed
# as a MediaPipe Tasks archive under ~/.cache/airquill (nothing is fetched at run time).
hand-model: $(VENV)/.test
	$(PY) -m airquill.vr_client.input.hands --setup

debian-test-packages:
	@if [ -n "$(strip $(DEBIAN_TEST_PACKAGES))" ] && [ "$$(id -u)" = 0 ]; then \
		missing=$$(for p in $(DEBIAN_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi; \
	fi

$(VENV)/.demo: pyproject.toml constraints/cpu.txt $(VENV)/.server
	$(PIP) install -q $(TORCH_PIN) -e ".[server,vr]"
	touch $@

# The VR client's headless host needs Mesa's EGL; as root, install it if missing.
demo: $(VENV)/.demo debian-demo-packages
	$(VENV)/bin/airquill demo

debian-demo-packages:
	@$(MAKE) --no-print-directory debian-test-packages DEBIAN_TEST_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri"

test: $(VENV)/.test debian-test-packages hand-model
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
