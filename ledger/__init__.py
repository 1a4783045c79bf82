"""The incident ledger: tables, engine, the repository (the only write path) and reads."""
