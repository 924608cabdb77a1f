# Every target installs what it needs (uv, then the locked dependencies) from a fresh clone.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help sync proto proto-check lint test test-fast run bench conformance clean

help:
	@echo "make run          install, migrate+seed SQLite, start policy service, front and demo backend"
	@echo "make test         install and run the whole suite (SQLite; Postgres too with MONOMCP_TEST_POSTGRES_URL)"
	@echo "make lint         ruff (lint and format check), mypy and the generated-stub drift check"
	@echo "make proto        regenerate gRPC stubs from protos/"
	@echo "make bench        gateway vs direct (raw and SDK upstreams, both eras, c=1/8/32); writes docs/benchmarks.md"
	@echo "make bench-scale  10M audit rows and 100,000 tools on Postgres: c=1 latency (gRPC and through the front), tools/list pages, EXPLAIN ANALYZE"
	@echo "make fuzz         long hypothesis fuzz run against a real front and the REST API (FUZZ_EXAMPLES=N)"
	@echo "make conformance  official MCP conformance scenarios against a running front (installs Node 22 from npm)"
	@echo "make soak         the fault test, longer: kill -9 processes and cut Postgres under load, then reconcile"

# Bytecode is compiled at install (PYTHONDONTWRITEBYTECODE=1 here, and uv compiles nothing by
# default): the front's first call then comes ~2x sooner (docs/adr/0015-lean-front-path.md).
sync:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(UV) run --no-sync python -m compileall -q -j 0 policy_service mcp_front monomcp_cli demo_backend bench >/dev/null

proto: sync
	$(UV) run python scripts/gen_proto.py

proto-check: sync
	$(UV) run python scripts/gen_proto.py --check

lint: proto-check
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy policy_service mcp_front monomcp_cli demo_backend bench

# The suite also runs on Postgres when one answers on 127.0.0.1:5432 (or MONOMCP_TEST_POSTGRES_URL is set).
# Four workers, a file per worker (most tests wait on real processes); a test that fails under
# that load is retried twice, and none may hang for more than 10 minutes.
test: proto-check
	@if [ -z "$$MONOMCP_TEST_POSTGRES_URL" ] && $(UV) run python scripts/find_postgres.py; then \
	  export MONOMCP_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test; fi; \
	  $(UV) run pytest -n 4 --dist loadfile --reruns 2 --timeout 600

run: sync
	$(UV) run monomcp dev

bench: sync
	$(UV) run python -m bench.run

conformance: sync
	bash scripts/conformance.sh
	bash scripts/conformance_items.sh

clean:
	rm -rf .monomcp .pytest_cache .mypy_cache .ruff_cache

# Long fuzz run (the default `make test` runs a short one). Scale with FUZZ_EXAMPLES.
FUZZ_EXAMPLES ?= 20000
.PHONY: fuzz
fuzz: sync
	MONOMCP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MONOMCP_FUZZ_REST_EXAMPLES=$(FUZZ_EXAMPLES) $(UV) run pytest tests/fuzz -q -p no:cacheprovider

# The fault test of tests/e2e/test_fault_reconcile.py, longer: kill -9 the policy service and
# the front and terminate Postgres connections while clients call, then reconcile.
# Needs MONOMCP_TEST_POSTGRES_URL; SOAK_SECONDS, SOAK_CLIENTS and SOAK_PERIOD size the run.
SOAK_SECONDS ?= 300
SOAK_CLIENTS ?= 50
SOAK_PERIOD ?= 6
.PHONY: soak
soak: sync
	@test -n "$$MONOMCP_TEST_POSTGRES_URL" || { echo "set MONOMCP_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)"; exit 2; }
	MONOMCP_FAULT_SECONDS=$(SOAK_SECONDS) MONOMCP_FAULT_CLIENTS=$(SOAK_CLIENTS) MONOMCP_FAULT_PERIOD=$(SOAK_PERIOD) \
		$(UV) run pytest tests/e2e/test_fault_reconcile.py -k reconcile_with -s -q -p no:cacheprovider -rxX

# CPU per policy decision with and without conditions, from tests/data/condition_cases.yaml (ADR 21).
.PHONY: bench-conditions
bench-conditions: sync
	$(UV) run python -m bench.conditions

# Flat at scale (Postgres): one toolkit grown to 100,000 tools and the audit log to 10M rows
# (12 month partitions) with COPY; c=1 latency, policy CPU per call and EXPLAIN ANALYZE of the
# hot queries (viewer, call_id, digest, verify, sweeper, retention), and through a real front:
# c=1 tools/call against a 10-tool reference toolkit, tools/list pages. Takes several minutes.
# MONOMCP_SCALE_TOOLS / MONOMCP_SCALE_AUDIT_ROWS size it (e.g. MONOMCP_SCALE_AUDIT_ROWS=0,10000000).
.PHONY: bench-scale
bench-scale: sync
	$(UV) run python -m bench.scale
