"""Session-wide real peers for the integration tests (see tests/peers.py)."""

from __future__ import annotations

import pytest

from tests.peers import Peers


@pytest.fixture(scope="session")
def peers(tmp_path_factory):
    """Prometheus, Alertmanager, node-exporter and blackbox-exporter, started once per session."""
    running = Peers(tmp_path_factory.mktemp("peers"))
    try:
        running.start()
        print(f"\npeers ready: {running.timings()}")
        yield running
    finally:
        running.stop()
