# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
VENV := .venv/bin
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: demo test lint bootstrap lab-down collection

bootstrap:
	@scripts/bootstrap.sh

## demo: bring the lab up if needed, run site.yml on it, show the result
demo: bootstrap
	@scripts/demo.sh

## test: lint and type-check, then every test (unit, namespace, lab end to end)
test: bootstrap
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/python -m pytest -n 2 --dist loadgroup tests

## collection: the Ansible collection nodeport_lb.core, dist/nodeport_lb-core-VERSION.tar.gz
collection: bootstrap
	$(VENV)/python scripts/build_collection.py

lint: bootstrap
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

lab-down: bootstrap
	$(VENV)/nodeport-lb lab down
