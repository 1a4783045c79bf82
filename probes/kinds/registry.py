"""Every probe kind, one entry each. All share ``async def run(target, ctx) -> Observation``."""

from probes.kinds import alertmanager, dns, host, http, logs, prometheus, tcp, tls

PROBES = {
    "http": http.run,
    "tcp": tcp.run,
    "dns": dns.run,
    "tls": tls.run,
    "host": host.run,
    "prometheus": prometheus.run,
    "alertmanager": alertmanager.run,
    "logs": logs.run,
}
