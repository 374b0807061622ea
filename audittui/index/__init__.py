"""The in-memory index: the columnar store over byte offsets, the loader and the live session
that fill it, and the query language over it. Imports only :mod:`audittui.ingest`."""
