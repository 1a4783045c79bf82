"""The samples store: what is written reads back, compaction never doubles a sample,
retention drops old segments, and a reader in another process is never broken by the writer."""

import multiprocessing
from datetime import UTC, datetime, timedelta

import polars as pl

from ledger.samples import Sample, SampleStore

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def samples(n: int, start: datetime = T0, step: timedelta = timedelta(seconds=1), service: str = "shop"):
    return [Sample("probe_duration_seconds", {"service": service, "target": "web", "kind": "http"}, i / 10,
                   start + i * step) for i in range(n)]


def count(store: SampleStore) -> int:
    return store.query("SELECT count(*) AS n FROM samples")["n"][0]


def test_written_samples_read_back_with_labels(tmp_path):
    store = SampleStore(tmp_path)
    store.append(samples(5))
    store.append([Sample("up", {"job": "node", "instance": "a:9100"}, 1.0, T0)])
    assert store.flush() == 6 and store.flush() == 0
    frame = store.frame(name="probe_duration_seconds", service="shop")
    assert frame["value"].to_list() == [0.0, 0.1, 0.2, 0.3, 0.4]
    up = store.frame(name="up")
    assert (up["service"][0], up["labels"][0]) == (None, '{"instance":"a:9100","job":"node"}')
    assert store.query("SELECT json_extract_string(labels, '$.job') AS job FROM samples WHERE name = 'up'")["job"][0] == "node"


def test_a_window_reads_only_its_samples(tmp_path):
    store = SampleStore(tmp_path)
    store.append(samples(120, step=timedelta(minutes=1)))
    store.flush()
    window = store.frame(since=T0 + timedelta(minutes=30), until=T0 + timedelta(minutes=39))
    assert window.height == 10


def test_samples_spanning_midnight_go_to_one_segment_per_day(tmp_path):
    store = SampleStore(tmp_path)
    store.append(samples(4, start=datetime(2026, 3, 1, 23, 59, 58, tzinfo=UTC)))
    store.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day=2026-03-01", "day=2026-03-02"]
    assert count(store) == 4


def test_compaction_merges_finished_hours_without_doubling(tmp_path):
    store = SampleStore(tmp_path, now=lambda: T0 + timedelta(hours=3))
    for batch in range(6):  # six flushes over two hours
        store.append(samples(20, start=T0 + batch * timedelta(minutes=20), step=timedelta(seconds=30)))
        store.flush()
    before = store.query("SELECT sum(value) AS s, count(*) AS n FROM samples")
    assert store.compact() == 2
    after = store.query("SELECT sum(value) AS s, count(*) AS n FROM samples")
    assert after["n"][0] == before["n"][0] == 120
    assert abs(after["s"][0] - before["s"][0]) < 1e-9  # the same values, summed in another order
    names = sorted(p.name for p in (tmp_path / "day=2026-03-01").iterdir())
    assert names == ["hour-10.parquet", "hour-11.parquet"]
    store.append(samples(3, start=T0 + timedelta(minutes=5)))  # a late flush into a compacted hour
    store.flush()
    assert count(store) == 123
    assert store.compact() == 1 and count(store) == 123


def test_retention_removes_old_segments(tmp_path):
    store = SampleStore(tmp_path, now=lambda: T0 + timedelta(days=3))
    store.append(samples(10))
    store.flush()
    store.append(samples(10, start=T0 + timedelta(days=2, hours=12)))
    store.flush()
    assert store.enforce_retention(timedelta(days=1)) == 1
    assert count(store) == 10 and not (tmp_path / "day=2026-03-01").exists()


def test_an_empty_store_answers_queries(tmp_path):
    frame = SampleStore(tmp_path / "none").frame(name="up")
    assert frame.height == 0 and frame.columns == ["ts", "name", "service", "target", "labels", "value"]


def _reader(root: str, rounds: int, results) -> None:
    store = SampleStore(root)
    seen = []
    try:
        for _ in range(rounds):
            seen.append(int(store.query("SELECT count(*) AS n FROM samples")["n"][0]))
    except Exception as exc:  # reported to the test rather than lost in the child
        results.put(f"reader broke: {exc}")
        return
    results.put(seen)


def test_a_reader_in_another_process_is_never_broken_by_the_writer(tmp_path):
    store = SampleStore(tmp_path, now=lambda: T0 + timedelta(hours=30))
    results = multiprocessing.get_context("spawn").Queue()
    reader = multiprocessing.get_context("spawn").Process(target=_reader, args=(str(tmp_path), 150, results))
    reader.start()
    for batch in range(60):  # writes, compactions and retention while the reader reads
        store.append(samples(500, start=T0 + batch * timedelta(minutes=20), step=timedelta(seconds=2)))
        store.flush()
        if batch % 10 == 9:
            store.compact()
    seen = results.get(timeout=120)
    reader.join(timeout=60)
    assert isinstance(seen, list), seen
    assert seen == sorted(seen), "counts only grow: no sample is ever read twice or lost mid-compaction"
    assert count(store) == 60 * 500
    assert isinstance(store.frame(), pl.DataFrame)
