"""Every probe kind, one entry each. All share ``async def run(target, ctx) -> Observation``."""

from probes import host, http

PROBES = {
    "http": http.run,
    "host": host.run,
}
