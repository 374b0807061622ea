"""Tests of audittui/analyses/ (a package here so that a test may import another's helpers)."""
