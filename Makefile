# `make panel` and `make test` each do the whole set-up first (see scripts/setup.sh).
.PHONY: setup panel serve test test-serial lint lint-only

setup:
	@scripts/setup.sh

panel: setup
	.venv/bin/python -m app

serve: setup
	.venv/bin/python -m app serve

# The 25 slowest tests after the run, and a JUnit report for tools (build/ is not committed).
# Three pytest-xdist workers on the two cores (the tests wait on their services' processes and
# timers much of the time: docs/performance.md, "Three workers"), whole files each (a file's
# module fixtures stay in one process), each on its own test ports (tests/conftest.py);
# `make test-serial` runs the same tests in one process.
PYTEST = QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q --durations=25 --junitxml=build/junit.xml

test: setup
	$(PYTEST) -n 3 --dist loadfile
	$(MAKE) --no-print-directory lint-only
	scripts/wheel-check.sh

test-serial: setup
	$(PYTEST)
	$(MAKE) --no-print-directory lint-only
	scripts/wheel-check.sh

lint: setup lint-only

lint-only:
	.venv/bin/ruff check app tests bench scripts
	.venv/bin/ruff format --check app tests bench scripts
	.venv/bin/lint-imports
	.venv/bin/mypy
