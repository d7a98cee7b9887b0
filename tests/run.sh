#!/usr/bin/env bash
# The project's test command (the README's, and CI's via .ci/run):
#   a test virtualenv with the package and its test extras, real GIMP 3.0 and 3.2 for the
#   end-to-end tests (set up once, cached outside the repo; needs root on Debian), the type checker (mypy,
#   configured in pyproject.toml), then pytest.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k engine`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NST_TEST_VENV:-.venv}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'

if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    bash tests/gimp/setup_gimp3.sh 3.0
    bash tests/gimp/setup_gimp3.sh 3.2
else
    echo "tests/run.sh: not root on Debian: real-GIMP tests will skip unless GIMP 3 is set up" >&2
fi

"$venv/bin/python" -m mypy
exec "$venv/bin/python" -m pytest "$@"
