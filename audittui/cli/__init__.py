"""The command line: ``audittui query|summary|findings|policy|stats`` and ``query --follow``."""
