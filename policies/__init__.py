"""The declarative policy the operator edits, and the pydantic models that validate it."""
