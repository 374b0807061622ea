"""The audit webhook backend: API servers POST ``EventList`` batches, the receiver makes them
durable in a spool folder that the reader follows like the API server's own log folder.

- :mod:`.names`: a sender (certificate CN or address) → a safe spool file name
- :mod:`.gunzip`: a gzip body decoded within the size limit, every member
- :mod:`.batch`: a request body → event lines and their deduplication keys, in bounded memory
- :mod:`.dedupe`: the recent keys, bounded, rebuilt from the spool at start
- :mod:`.spool`: durable, lumberjack-rotated JSON-lines files, one live file per sender, in a
  folder that is the receiver's own and where no link is followed
- :mod:`.metrics`: counters and histograms (prometheus-client), label values made inert
- :mod:`.store`: batches into a ClickHouse table instead (``--to``)
- :mod:`.server`: configuration, authentication, admission, delivery semantics of a batch
- :mod:`.http`: connections (asyncio, h11): caps, deadlines, TLS, the endpoints, a graceful stop
"""
