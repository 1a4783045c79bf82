"""Root-cause hypotheses of an incident: a deterministic draft from rules over its evidence
(draft.py, evidence.py, checks.py), refined by a model through the declared routing policy
(router.py, answer.py, prompt.py, refine.py), and the routing decisions' audit (imports.py,
divergence.py)."""
