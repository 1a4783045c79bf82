"""How the fleet cuts its work: buckets of targets per interval slot.

A target with interval I runs at the same point of each slot ``[k*I, (k+1)*I)``: ``spread`` of
its name. A slot is cut into windows of ``fleet.window`` (at most I); a bucket is the targets of
one (location, interval, slot, window), at most ``fleet.bucket_size`` of them, sharded by name
when there are more. One bucket is one queue job whatever its size, so 100,000 targets at 60 s
in buckets of 500 are about 200 jobs a minute, not 1,700 a second. Every worker works the same
buckets out of the same policy; a bucket's key names it, so planning it twice makes one job.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import asdict, dataclass
from datetime import timedelta

DEFAULT_LOCATION = "local"  # a worker's location unless told
ANYWHERE = "*"  # the location of buckets of targets probed from any one location


def spread(name: str, interval: timedelta) -> timedelta:
    """Where in its interval a target's runs fall: the same for the same name, even across targets."""
    return interval * (zlib.crc32(name.encode()) / 2**32)


@dataclass(frozen=True)
class Bucket:
    location: str  # ANYWHERE, or the location every target in it is probed from
    interval: float  # seconds
    slot: int  # the slot's start, seconds since the epoch
    window: int  # which window of the slot
    shard: int
    shards: int

    @property
    def key(self) -> str:
        """The bucket's name, the queue's dedupe key: one job per bucket however many plan it."""
        return f"probe@{self.location}/{self.interval:g}s/{self.slot}/{self.window}/{self.shard}"

    @property
    def entrypoint(self) -> str:
        return entrypoint(self.location)

    def start(self, window: float) -> float:
        return self.slot + self.window * window

    def payload(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_payload(cls, payload: bytes) -> Bucket:
        return cls(**json.loads(payload))


def entrypoint(location: str) -> str:
    """The queue entrypoint of a location's buckets (``probe@*`` for the location-free ones)."""
    return f"probe@{location}"


def window_of(target, window: timedelta) -> tuple[float, int]:
    """The window length of the target's interval, and which window of a slot its run falls in."""
    length = min(window, target.interval).total_seconds()
    return length, int(spread(target.name, target.interval).total_seconds() // length)


def places(target) -> list[str]:
    """The locations that probe ``target`` every interval: its own, or any one."""
    return list(target.locations) or [ANYWHERE]


class Layout:
    """The policy's enabled targets by (location, interval, window of the slot): what planning
    counts and what a bucket's members are taken from, built once per policy."""

    def __init__(self, targets, window: timedelta):
        self.window = window
        self.groups: dict[tuple[str, float, int], list] = {}
        for target in targets:
            _, index = window_of(target, window)
            for place in places(target):
                self.groups.setdefault((place, target.interval.total_seconds(), index), []).append(target)

    def plan(self, live_locations: set[str], now: float, horizon: float, bucket_size: int) -> list[Bucket]:
        """The buckets of the windows that start in ``(now, now + horizon]``, for the locations that
        have a live worker (and the location-free targets)."""
        buckets = []
        for (place, interval, index), group in sorted(self.groups.items(), key=lambda item: item[0]):
            if place != ANYWHERE and place not in live_locations:
                continue
            length = min(self.window.total_seconds(), interval)
            for slot in range(math.floor(now / interval), math.floor((now + horizon) / interval) + 1):
                if now < slot * interval + index * length <= now + horizon:
                    shards = math.ceil(len(group) / bucket_size)
                    buckets += [Bucket(place, interval, int(slot * interval), index, shard, shards)
                                for shard in range(shards)]
        return buckets

    def members(self, bucket: Bucket) -> list:
        """The targets of ``bucket``."""
        return [t for t in self.groups.get((bucket.location, bucket.interval, bucket.window), [])
                if zlib.crc32(t.name.encode()) % bucket.shards == bucket.shard]
