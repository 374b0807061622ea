"""Everything audittui prints or writes: log text made inert, tables, JSON, CSV, masked
secrets and exports. Call sites hand log values here; they never write them raw."""
