"""Service benchmarks for `ingestq serve` (issue 9, "Performance"): `python -m bench.service`.

Every figure comes from a real `ingestq serve` process (uvicorn) loaded over real HTTP by a separate
client process (bench/service/load.py), on SQLite and PostgreSQL, with peers measured in the same run:

- uploads: a 200 KB PDF → 202, at a fixed offered rate and at the max rate (closed loop);
- polls: status polls while a worker in another process embeds at full speed, beside the pattern ingestq
  replaces (bench/service/background_app.py: FastAPI `BackgroundTasks` + an in-memory status dict), and
  what a SIGKILL right after the 202s loses on each;
- flat: `/metrics`, the dashboard overview, `GET /v1/jobs` and the dashboard jobs page with 10k, 100k and
  1M finished jobs in the table;
- sse: 200 `/v1/events` subscribers on one process, latency from a job's state change to its event
  (bench/sse.py's measurement, also runnable alone as `python -m bench.sse`).

The results go into BENCHMARKS.md between `<!-- bench.service -->` markers (bench/service/report.py),
which `python -m bench.run` keeps when it rewrites the rest of the file.
"""
