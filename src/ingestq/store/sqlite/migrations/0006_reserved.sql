-- Reserved: another branch takes version 6; this placeholder keeps the numbering contiguous on the
-- webhooks branch and is dropped when the two are merged (0007 applies after either).
SELECT 1;
