"""Defining work: a task (handler + options), the registry of kinds a worker serves, periodic schedules
and the retry policy. Above the models, below the client and the worker."""
