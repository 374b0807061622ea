"""Tests of audittui/cli/ (a package here so that a test may import another's helpers)."""
