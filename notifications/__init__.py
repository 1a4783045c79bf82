"""Reaching the operator: planning notifications from the ledger's incidents and action requests
(plan.py), delivering them through the outbox (outbox.py, senders.py) and reading the answers
channels bring back (answers.py)."""
