"""Leaf models: jobs, documents and the values the stores exchange. They import nothing of ingestq's
but `errors` and `clock`, so every layer above may use them."""
