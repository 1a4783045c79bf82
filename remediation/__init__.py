"""Guarded remediation: proposals pass the policy gate, wait for the operator's signed
approval where needed, run in the worker with a timeout, are verified by probes and are
audited on the incident's timeline at every step."""
