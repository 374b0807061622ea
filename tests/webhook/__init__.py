"""Tests of audittui/webhook/ (a package here so that a test may import another's helpers)."""
