"""The request planner: correct (every tag once, inside limits) and minimal (checked exhaustively)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus.config import ModbusDeviceConfig
from drivers.modbus.driver import build_plan
from drivers.modbus.plan import ReadRequest, TagSpan, plan_requests


def spans(*items: tuple[int, int]) -> list[TagSpan]:
    return [TagSpan(f"t{i}", "holding", start, count) for i, (start, count) in enumerate(items)]


def ranges(requests: list[ReadRequest]) -> list[tuple[int, int]]:
    return [(r.start, r.count) for r in requests]


@pytest.mark.parametrize(
    ("items", "max_gap", "max_count", "expected"),
    [
        # adjacent tags merge
        ([(0, 1), (1, 2), (3, 2)], 0, 125, [(0, 5)]),
        # a gap of 3 unused registers: read across it only when max_gap allows
        ([(0, 2), (5, 2)], 3, 125, [(0, 7)]),
        ([(0, 2), (5, 2)], 2, 125, [(0, 2), (5, 2)]),
        # the 125-register limit splits a long run
        ([(0, 100), (100, 25), (125, 1)], 0, 125, [(0, 125), (125, 1)]),
        # overlapping tags (a float and a bit of its first register) share one read
        ([(10, 2), (10, 1), (11, 1)], 0, 125, [(10, 2)]),
        # a device that allows only 8 registers per request
        ([(0, 4), (4, 4), (8, 4)], 10, 8, [(0, 8), (8, 4)]),
        # order of declaration does not matter
        ([(50, 1), (0, 1), (25, 1)], 30, 125, [(0, 51)]),
        ([], 10, 125, []),
    ],
)
def test_known_plans(
    items: list[tuple[int, int]], max_gap: int, max_count: int, expected: list[tuple[int, int]]
) -> None:
    plan = plan_requests(spans(*items), max_gap=max_gap, max_count=max_count, table="holding")
    assert ranges(plan) == expected
    check_valid(spans(*items), plan, max_gap, max_count)


def test_tag_larger_than_a_request_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 4 addresses"):
        plan_requests(spans((0, 4)), max_gap=0, max_count=2, table="holding")


def test_device_plan_per_table_and_one_based_addressing() -> None:
    device = ModbusDeviceConfig.model_validate(
        {
            "driver": "modbus",
            "host": "h",
            "addressing": 1,
            "tags": {
                "run": {"table": "coil", "address": 1, "type": "bool"},
                "stop": {"table": "coil", "address": 3, "type": "bool"},
                "temp": {"table": "input", "address": 1, "type": "float32"},
                "count": {"table": "holding", "address": 101, "type": "uint32"},
                "code": {"table": "holding", "address": 104},
            },
        }
    )
    plan = build_plan(device)
    assert [(r.table, r.start, r.count) for r in plan] == [
        ("coil", 0, 3),
        ("holding", 100, 4),
        ("input", 0, 2),
    ]
    assert dict(plan[1].tags) == {"count": 0, "code": 3}


def check_valid(
    all_spans: list[TagSpan], plan: list[ReadRequest], max_gap: int, max_count: int
) -> None:
    placed = [name for r in plan for name, _ in r.tags]
    assert sorted(placed) == sorted(s.name for s in all_spans), "every tag in exactly one request"
    by_name = {s.name: s for s in all_spans}
    for request in plan:
        assert 1 <= request.count <= max_count
        covered = set()
        for name, offset in request.tags:
            span = by_name[name]
            assert request.start + offset == span.start
            assert span.start + span.count <= request.start + request.count
            covered |= set(range(span.start, span.start + span.count))
        assert longest_hole(covered, request.start, request.start + request.count) <= max_gap


def longest_hole(covered: set[int], start: int, end: int) -> int:
    longest = run = 0
    for address in range(start, end):
        run = 0 if address in covered else run + 1
        longest = max(longest, run)
    return longest


def partitions(items: list[TagSpan]) -> Iterator[list[list[TagSpan]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in partitions(rest):
        for i in range(len(smaller)):
            yield [*smaller[:i], [first, *smaller[i]], *smaller[i + 1 :]]
        yield [[first], *smaller]


def feasible(group: list[TagSpan], max_gap: int, max_count: int) -> bool:
    start = min(s.start for s in group)
    end = max(s.start + s.count for s in group)
    covered = {a for s in group for a in range(s.start, s.start + s.count)}
    return end - start <= max_count and longest_hole(covered, start, end) <= max_gap


def fewest_requests(items: list[TagSpan], max_gap: int, max_count: int) -> int:
    """Exhaustive: every way of grouping the tags into requests, the smallest feasible one."""
    return min(len(p) for p in partitions(items) if all(feasible(g, max_gap, max_count) for g in p))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from([1, 1, 2, 4])), min_size=1, max_size=7),
    st.integers(0, 6),
    st.integers(4, 20),
)
def test_greedy_plan_is_minimal(items: list[tuple[int, int]], max_gap: int, max_count: int) -> None:
    tags = spans(*items)
    plan = plan_requests(tags, max_gap=max_gap, max_count=max_count, table="holding")
    check_valid(tags, plan, max_gap, max_count)
    assert len(plan) == fewest_requests(tags, max_gap, max_count)
