"""Tests of audittui/findings/ (a package here so that a test may import another's helpers)."""
