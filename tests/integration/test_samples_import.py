"""`workbench samples import` against the real Prometheus of the integration tests: a range query's
series land in the samples store labelled as a prometheus target labels them, once however often
imported; a saved answer imports the same; a Prometheus that is down or answers garbage is one
line and writes nothing."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.cli import main
from app.settings import ENV_DATA, ENV_DB, ENV_POLICY
from ledger.samples import SampleStore
from tests.support import LocalServer, QuietHandler, free_port, wait_until

pytestmark = pytest.mark.integration
TARGETS = """
targets:
  - name: prom-up
    kind: prometheus
    service: monitoring
    url: {url}
    query: up
    metric: scrape_up
"""


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch, peers):
    for name in (ENV_POLICY, ENV_DATA, ENV_DB):
        monkeypatch.delenv(name, raising=False)
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "targets.yaml").write_text(TARGETS.format(url=peers.prometheus.url))

    def run(*args: str):
        status = main(["--policy", str(policy), "--data", str(tmp_path / "var"), *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def stored(tmp_path):
    return SampleStore(tmp_path / "var" / "samples").query(
        "SELECT name, service, target, labels, ts, value FROM samples ORDER BY ts")


def test_a_range_query_is_imported_once_as_its_target_labels_it(cli, peers, tmp_path):
    wait_until(lambda: peers.wait_for("up"), "Prometheus to have scraped")
    args = ("samples", "import", "--prometheus", peers.prometheus.url, "--query", "up", "--since", "10m",
            "--step", "1s", "--name", "prom-up")
    status, out, err = cli(*args)
    rows = stored(tmp_path)
    assert (status, err) == (0, "") and rows.height > 0
    assert out == f"imported {rows.height:,} samples of {rows['labels'].n_unique():,} series as target 'prom-up' (0 " \
                  "already in the store)\n"
    assert set(rows["name"]) == {"scrape_up"} and set(rows["service"]) == {"monitoring"}
    labels = json.loads(rows["labels"][0])
    assert labels["target"] == "prom-up" and labels["kind"] == "prometheus" and "job" in labels
    assert set(rows["value"]) <= {0.0, 1.0}

    again = cli(*args)
    assert again[0] == 0 and again[1].startswith("imported 0 samples") or "already in the store" in again[1]
    assert stored(tmp_path).height >= rows.height
    assert stored(tmp_path).unique(["name", "labels", "ts"]).height == stored(tmp_path).height


def test_a_saved_answer_imports_as_the_server_does(cli, peers, tmp_path):
    wait_until(lambda: peers.wait_for("up"), "Prometheus to have scraped")
    now = time.time()
    answer = httpx.get(f"{peers.prometheus.url}/api/v1/query_range",
                       params={"query": "up", "start": f"{now - 600:.0f}", "end": f"{now:.0f}", "step": "1"}, timeout=10)
    saved = tmp_path / "up.json"
    saved.write_bytes(answer.content)
    status, out, err = cli("samples", "import", "--file", str(saved))
    assert (status, err) == (0, "") and out.startswith("imported ") and "as target 'import'" in out
    assert set(stored(tmp_path)["service"]) == {"import"}


def test_a_prometheus_down_or_answering_garbage_is_one_line(cli, tmp_path, peers):
    status, _, err = cli("samples", "import", "--prometheus", peers.prometheus.url, "--query", "up{", "--since", "1h")
    assert status == 1 and err.startswith(f"workbench: Prometheus at {peers.prometheus.url}: bad_data: ")
    assert err.count("\n") == 1
    saved = tmp_path / "garbage.json"
    saved.write_text('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": 5}]}}')
    assert cli("samples", "import", "--file", str(saved))[0::2] == (
        1, f"workbench: {saved}: malformed matrix result (KeyError: 'metric')\n")
    port = free_port()
    status, _, err = cli("samples", "import", "--prometheus", f"http://admin:S3cret@127.0.0.1:{port}", "--query", "up",
                         "--since", "1h")
    assert status == 1 and err.startswith(f"workbench: cannot query Prometheus at http://admin:***@127.0.0.1:{port}: ")
    assert err.count("\n") == 1 and "S3cret" not in err

    class Garbage(QuietHandler):
        def do_GET(self):
            self.reply(200, b"<html>not prometheus</html>", "text/html")

    server = LocalServer(Garbage)
    try:
        status, _, err = cli("samples", "import", "--prometheus", server.url, "--query", "up", "--since", "1h")
    finally:
        server.close()
    assert (status, err) == (1, f"workbench: Prometheus at {server.url}: HTTP 200, not a JSON answer: "
                                "'<html>not prometheus</html>'\n")
    assert not (tmp_path / "var" / "samples").exists() or stored(tmp_path).is_empty()


@pytest.mark.parametrize("args, error", [
    (("samples", "import"), "workbench: give --prometheus URL --query Q --since D, or --file F.json\n"),
    (("samples", "import", "--prometheus", "http://127.0.0.1:9"), "workbench: --prometheus needs --query and --since\n"),
    (("samples", "import", "--prometheus", "http://127.0.0.1:9", "--query", "up", "--since", "1h", "--step", "0.1s"),
     "workbench: --step '0.1s': at least 1s\n"),
])
def test_bad_arguments_are_one_line(cli, args, error):
    assert cli(*args)[0::2] == (1, error)
