# The two entry points of the README. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lit pytest clean

$(STAMP): pyproject.toml setup.py runtime/launcher.cpp runtime/cuda_decls.h
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m tessera.demo

pytest: $(STAMP)
	$(BIN)/python -m pytest tests

lit: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/lit -sv lit_tests

test: pytest lit

clean:
	rm -rf $(VENV) build *.egg-info
