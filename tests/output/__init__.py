"""Tests of audittui/output/ (a package here so that a test may import another's helpers)."""
