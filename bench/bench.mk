# Benchmark targets (issue 5); the top-level Makefile includes this file with `-include bench/bench.mk`.
# `make bench` is bounded: `timeout` sends SIGTERM after BENCH_TIMEOUT seconds (15 min, the issue's
# bound; a quiet 2-core machine needs ~11) and `python -m bench` then stops every redis-server and
# worker it started before exiting.
# BENCH_ARGS passes options through, e.g. BENCH_ARGS="--only memory --memory-time-cap 720"; a longer
# memory cap needs a longer BENCH_TIMEOUT too.
.PHONY: bench bench-smoke
BENCH_ARGS ?=
BENCH_TIMEOUT ?= 900

bench: setup ## benchmarks: kit defaults vs Celery defaults (~11 min), writes bench/results/
	timeout --kill-after=60 $(BENCH_TIMEOUT) $(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: setup ## tiny benchmark run (<1 min, no timing targets), writes bench/results/tmp/
	timeout --kill-after=30 180 $(BIN)/python -m bench --smoke

# Worker layouts on three workloads (bench/README.md, "4. Worker layouts"): ~25 min on a quiet
# 2-core machine, so not part of `make bench`; its own bound.
.PHONY: bench-layouts
BENCH_LAYOUTS_TIMEOUT ?= 2400
bench-layouts: setup ## worker layouts on three workloads at 50/80/95 % load (~25 min), writes bench/results/
	timeout --kill-after=60 $(BENCH_LAYOUTS_TIMEOUT) $(BIN)/python -m bench --only layouts $(BENCH_ARGS)
