#!/usr/bin/env bash
# Installs olah, a Hub-protocol server, into its own virtual environment .olah-venv (repo root).
# The hub-marked tests start it on 127.0.0.1 to download our published folders by repo id. It gets its own venv
# because it pins old versions of shared packages (psutil<6) that must not reach the project's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OLAH_VERSION=0.5.4
if [ ! -x .olah-venv/bin/python ]; then
  "$PYTHON" -m venv .olah-venv
fi
.olah-venv/bin/python -m pip install -q --upgrade pip
.olah-venv/bin/python -m pip install -q "olah==${OLAH_VERSION}"
.olah-venv/bin/olah-cli --help > /dev/null
echo "olah ${OLAH_VERSION} installed in $(pwd)/.olah-venv"
