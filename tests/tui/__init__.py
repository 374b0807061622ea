"""Tests of audittui/tui/ (a package here so that a test may import another's helpers)."""
