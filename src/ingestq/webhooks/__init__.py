"""Webhook deliveries: signing (Standard Webhooks), the guarded sender and the `ingestq.webhook` job kind.

The deliveries themselves are enqueued by the store (migration 7's triggers, in the transaction of the
outcome that causes them); this package sends them. See docs/webhooks.md.
"""
