"""Reading audit logs: sources (files, folders, backups, stdin), the formats and wrappers
events arrive in, and parsing them into columnar batches, in bulk or while following.

The bottom layer: it imports nothing else of audittui."""
