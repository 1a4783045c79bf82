"""Probe kinds: one module each, all with ``async def run(target, ctx) -> ProbeResult``; ``registry``\nnames them."""
