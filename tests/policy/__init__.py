"""Tests of audittui/policy/ (a package here so that a test may import another's helpers)."""
