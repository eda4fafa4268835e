"""One driver per system. Each is a module run as `python -m bench.drivers.<name> <command>` inside the
interpreter that has the system installed (peers: .bench-venv; ingestq: .venv)."""
