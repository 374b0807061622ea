"""Tests of audittui/clickhouse/ (a package here so that a test may import another's helpers)."""
