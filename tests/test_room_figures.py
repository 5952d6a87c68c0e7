"""The room benchmark's figures (benchmarks/room.py): what it reports from the sessions' outcomes, without a browser."""
import math

from benchmarks.room import Room, against_floor, answer_times


def room_of(*results) -> Room:
    return Room(list(results), seconds=0.0, server_cpu=1.0, browsers_cpu=4.0)


def test_median_and_p95_count_answered_sessions_only():
    measured = room_of(*[("answered", float(t)) for t in range(1, 21)], ("exception", 0.1),
                       ("failed: TimeoutError", math.nan))
    median, p95 = answer_times(measured)
    assert median == 10.5 and p95 == 19.0  # the 95th percentile of 20 answers is the 19th, not the slowest
    assert all(math.isnan(x) for x in answer_times(room_of(("failed: TimeoutError", math.nan))))


def test_classify_is_printed_as_multiples_of_the_floor():
    ours = Room([("answered", 2.0), ("answered", 6.0)], seconds=6.0, server_cpu=1.0, browsers_cpu=9.0)
    floor = Room([("answered", 1.0), ("answered", 3.0)], seconds=3.0, server_cpu=1.0, browsers_cpu=3.0)
    assert against_floor(ours, floor).split("floor: ")[1] == "median 2.0x, p95 2.0x, browsers' CPU 3.0x"
