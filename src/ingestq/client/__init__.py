"""The application's API: `Client` (the queue), `Documents` (ingest, search, manage) and `SyncClient`.

Nothing is imported here: a worker process imports `ingestq.client.client` without the documents layer.
"""
