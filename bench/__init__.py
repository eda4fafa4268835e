"""`make bench`: ingestq's queue measured side by side with peer queues on one workload.

Run as `python -m bench.run` (see `--help`). Peers live in a venv of their own (`.bench-venv`), never in
ingestq's dependencies; each system is driven by a small script in `bench/drivers/`.
"""
