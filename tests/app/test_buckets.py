"""How the fleet cuts its work into buckets (app/worker/buckets.py): every target of a location
in exactly one bucket per slot, no bucket over its size, the same plan from every worker, only
the coming windows, only locations with a live worker."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from app.worker.buckets import ANYWHERE, Bucket, Layout
from policies.schema import HttpTarget

WINDOW = timedelta(seconds=10)


def targets(n: int, interval: str = "60s", locations: tuple[str, ...] = ()) -> list[HttpTarget]:
    return [HttpTarget(kind="http", name=f"t-{interval}-{i}", service="shop", url="http://127.0.0.1:9/",
                       interval=interval, locations=list(locations)) for i in range(n)]


def test_every_target_is_in_exactly_one_bucket_of_each_slot_per_location():
    fleet = targets(3000, locations=("eu-1", "office")) + targets(700, "30s") + targets(50, "5s")
    now = 1_800_000_000.0
    layout = Layout(fleet, WINDOW)
    planned = layout.plan({"eu-1", "office"}, now, horizon=120, bucket_size=250)
    assert len({b.key for b in planned}) == len(planned)
    runs = Counter()
    for bucket in planned:
        inside = layout.members(bucket)
        assert 0 < len(inside) <= 250
        for target in inside:
            runs[target.name, bucket.location, bucket.slot] += 1
    assert set(runs.values()) == {1}
    for target in fleet:  # each slot fully inside the horizon holds each of the target's places once
        interval = target.interval.total_seconds()
        places = target.locations or [ANYWHERE]
        for slot in range(int(now // interval + 1) * int(interval), int(now + 120 - interval), int(interval)):
            assert all(runs[target.name, place, slot] == 1 for place in places), (target.name, slot)


def test_planning_again_gives_the_same_buckets_and_only_coming_windows():
    fleet = targets(1200)
    now = 1_800_000_005.0
    first = Layout(fleet, WINDOW).plan(set(), now, horizon=20, bucket_size=500)
    assert first == Layout(list(reversed(fleet)), WINDOW).plan(set(), now, horizon=20, bucket_size=500)
    assert all(now < b.start(10) <= now + 20 for b in first)
    assert {b.start(10) for b in first} == {now + 5, now + 15}


def test_a_location_without_a_live_worker_gets_no_buckets():
    fleet = targets(100, locations=("eu-1", "office"))
    planned = Layout(fleet, WINDOW).plan({"eu-1"}, 1_800_000_000.0, horizon=60, bucket_size=500)
    assert {b.location for b in planned} == {"eu-1"}


def test_a_bucket_travels_through_the_queue_as_its_payload():
    bucket = Bucket("office", 60.0, 1_800_000_000, 3, 1, 4)
    assert Bucket.from_payload(bucket.payload()) == bucket
    assert bucket.key == "probe@office/60s/1800000000/3/1" and bucket.entrypoint == "probe@office"
