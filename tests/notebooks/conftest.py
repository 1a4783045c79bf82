"""The notebooks' tests run on a SQLite ledger in the test's data directory holding a real incident's activity."""

from __future__ import annotations

import pytest

from tests.activity import Activity, fill_sqlite


@pytest.fixture
def activity(tmp_path, demo_target, receiver, monkeypatch) -> Activity:
    monkeypatch.delenv("WORKBENCH_DATABASE_URL", raising=False)
    return fill_sqlite(tmp_path / "var", demo_target, receiver)
