"""The audit webhook backend: API servers POST ``EventList`` batches, the receiver makes them
durable in a spool folder that the reader follows like the API server's own log folder.

- :mod:`.names`: a sender (certificate CN or address) → a safe spool file name
- :mod:`.batch`: a request body → event lines and their deduplication keys
- :mod:`.dedupe`: the recent keys, bounded, rebuilt from the spool at start
- :mod:`.spool`: durable, lumberjack-rotated JSON-lines files, one live file per sender
- :mod:`.metrics`: counters and histograms in the Prometheus text format
- :mod:`.server`: HTTP(S), authentication, admission, delivery semantics, graceful stop
"""
