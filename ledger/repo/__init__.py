"""Every write to the ledger, by domain: ``incidents`` (findings, incidents, timeline, evidence),
``observations`` (probe results and their threshold state), ``alerts``, ``silences``, ``rules``
(detector rule state), ``actions`` (remediation), ``hypotheses`` (refinements and routing
decisions), ``notifications`` (the outbox, channel buttons and answers). Functions take an
open write session; the caller owns the transaction, so an observation, its threshold state, its
finding and its incident commit together or not at all."""
