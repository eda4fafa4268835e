-- Reserved: another branch takes version 6; this placeholder keeps the numbering contiguous on the
-- webhooks branch and is dropped when the two are merged (0007 applies after either).
-- Queue schema only: applied even where the index migration (2) is refused for want of pgvector.
SELECT 1;
