"""Tests of audittui/ingest/ (a package here so that a test may import another's helpers)."""
