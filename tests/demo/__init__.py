"""Tests of audittui/demo/ (a package here so that a test may import another's helpers)."""
