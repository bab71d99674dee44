# Two commands matter: `make run` (install everything, serve the demo county) and `make test`.
PORT ?= 8000
export CITYGRID_PORT := $(PORT)

.PHONY: setup run test lint bench fuzz load soak parser-model parse-eval stop clean

setup:
	bash scripts/setup.sh

run: setup
	CITYGRID_DEMO=1 .venv/bin/citygrid serve

test:
	CITYGRID_SETUP_TEST=1 bash scripts/setup.sh
	.venv/bin/ruff check citygrid api tests bench
	.venv/bin/mypy
	.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15

# Style and types only (ruff, then mypy --strict on citygrid/ and api/; its configuration is in pyproject.toml).
lint: setup
	.venv/bin/ruff check citygrid api tests bench
	.venv/bin/mypy

bench: setup
	.venv/bin/python bench/coding.py
	.venv/bin/python bench/geocode_eval.py

# The schemathesis run of `make test` (tests/test_reliability_fuzz.py) with many more cases per operation.
FUZZ_EXAMPLES ?= 100
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_reliability_fuzz.py

# Load (bench/load.py): geocode, OGC items, tiles, aggregates and authenticated writes at 32 and 128 concurrent
# clients against uvicorn with 1 and 3 workers, on the database `make run` uses (run it once first).
load: setup
	.venv/bin/python bench/load.py

# Soak: one worker, 32 clients, 30 minutes; prints the API process's RSS at the start and the end.
SOAK_SECONDS ?= 1800
soak: setup
	.venv/bin/python bench/load.py --workers 1 --clients 32 --duration $(SOAK_SECONDS)

# The address parser's model is a committed artifact (citygrid/address/models/address_crf.bin + .json; CI does not
# train it). This rebuilds it from the shared labelled corpora (../shared/data/address or CITYGRID_SHARED_DATA): the
# frozen split's CCKS2021 train + dev rows (bench/splits/address_split.json, seed 12), about 2.5 CPU-minutes.
# L-BFGS is deterministic: the same corpus gives the same file. The JSON records the data, split and command.
parser-model: setup
	.venv/bin/python -m citygrid.address.training train

# Parser F1 on the frozen split beside the plain baseline CRF (trained into bench/out/ when missing), jionlp and cpca.
parse-eval: setup
	.venv/bin/python bench/parse_eval.py

stop:
	-.venv/bin/citygrid db down

clean: stop
	rm -rf .citygrid .citygrid-test .citygrid-outage-* .citygrid-bench-outage-* .citygrid-replica-* .citygrid-backup-* .citygrid-kill-*
