"""ClickHouse as audittui's shared store for a fleet: the table, its client, the query language
compiled to SQL, ``ship`` into it and the reads the CLI and the app make of it."""
