"""The backends the front ends read events through (see :mod:`.protocol`)."""
