"""The fault suite (issue 10): real workers, injected faults, figures. See `python -m bench.chaos --help`."""
