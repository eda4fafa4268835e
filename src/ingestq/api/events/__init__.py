"""Server-Sent Events: the process's change feed (feed.py) and the streams it fans out to (stream.py)."""
