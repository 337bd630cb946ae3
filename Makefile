# `make panel` and `make test` each do the whole set-up first (see scripts/setup.sh).
.PHONY: setup panel serve test lint

setup:
	@scripts/setup.sh

panel: setup
	.venv/bin/python -m app

serve: setup
	.venv/bin/python -m app serve

test: setup
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q
	.venv/bin/ruff check app tests bench

lint: setup
	.venv/bin/ruff check app tests bench
