"""Tests of audittui/index/ (a package here so that a test may import another's helpers)."""
