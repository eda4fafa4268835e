"""The one-hour soak (issue 10, part 3): a steady mixed load on a real `ingestq serve` and two real
`ingestq worker` processes, sampled every ~10 s for memory, database size and pickup latency.

Unlike `python -m bench.chaos soak` (faults: SIGKILL and SIGTERM in turn), nothing is disturbed here:
the question is whether anything grows or slows down when the service simply runs for an hour."""
