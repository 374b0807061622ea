"""Tests of audittui/query/ (a package here so that a test may import another's helpers)."""
