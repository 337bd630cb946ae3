#!/usr/bin/env bash
# Installable as users install: build the wheel, install it into a fresh venv outside the
# checkout, and run the installed `bizobs-panel` from a folder that has no source tree in it.
# Ports 8361-8380 (API 8360) by default, so it never meets the test suite's or a panel's
# ports; BIZOBS_WHEEL_PORTS=LO-HI moves them (the API on the port just below).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/bizobs-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
.venv/bin/pip wheel -q --no-deps --disable-pip-version-check -w "$work/dist" .
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$work"/dist/bizobs_panel-*.whl
cd "$work"  # nothing of the checkout on sys.path from here
ports=${BIZOBS_WHEEL_PORTS:-8361-8380}
export BIZOBS_STATE_DIR="$work/state" BIZOBS_PORTS="$ports" BIZOBS_API_PORT=$((${ports%-*} - 1))
export BIZOBS_ESSENTIAL_SERVICES=""
"$work/venv/bin/bizobs-panel" run e-commerce --customers 2
"$work/venv/bin/bizobs-panel" ports | tail -n 1
"$work/venv/bin/python" -c "import importlib.resources as r, json
json.loads((r.files('app') / 'resources/grafana/bizobs-panel.json').read_text())"
echo "wheel check: the installed bizobs-panel ran a packaged template, listed the pool and has the Grafana dashboard"
