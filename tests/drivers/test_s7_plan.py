"""The S7 read planner: tags merged into ranges, ranges cut and packed into requests within the PDU."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.s7.config import S7DeviceConfig
from drivers.s7.driver import build_ranges
from drivers.s7.plan import (
    MAX_ITEMS,
    ReadRange,
    TagSpan,
    answer_bytes,
    item_capacity,
    merge_ranges,
    pack_requests,
    request_bytes,
)


def span(area: str, db: int, start: int, size: int, name: str = "") -> TagSpan:
    return TagSpan(name or f"{area}{db}_{start}_{size}", area, db, start, size)


def shape(ranges: list[ReadRange]) -> list[tuple[str, int, int, int]]:
    return [(r.area, r.db, r.start, r.size) for r in ranges]


@pytest.mark.parametrize(
    ("spans", "max_gap", "expected"),
    [
        # adjacent and overlapping tags (bits of one byte, a word and its bytes) share a range
        (
            [
                span("DB", 1, 0, 1, "a"),
                span("DB", 1, 0, 1, "b"),
                span("DB", 1, 1, 2),
                span("DB", 1, 2, 1),
            ],
            0,
            [("DB", 1, 0, 3)],
        ),
        # a gap of 4 unused bytes is read across only when max_gap allows it
        ([span("DB", 1, 0, 2), span("DB", 1, 6, 4)], 4, [("DB", 1, 0, 10)]),
        ([span("DB", 1, 0, 2), span("DB", 1, 6, 4)], 3, [("DB", 1, 0, 2), ("DB", 1, 6, 4)]),
        # different DBs and areas never share a range, whatever the gap
        (
            [span("DB", 2, 0, 2), span("DB", 1, 0, 2), span("M", 0, 0, 2), span("I", 0, 2, 2)],
            100,
            [("DB", 1, 0, 2), ("DB", 2, 0, 2), ("M", 0, 0, 2), ("I", 0, 2, 2)],
        ),
        # order of declaration does not matter; output order is DB by number, M, I, Q
        (
            [span("Q", 0, 0, 1), span("DB", 1, 30, 4), span("DB", 1, 0, 4), span("DB", 1, 14, 4)],
            12,
            [("DB", 1, 0, 34), ("Q", 0, 0, 1)],
        ),
        ([], 16, []),
    ],
)
def test_known_merges(
    spans: list[TagSpan], max_gap: int, expected: list[tuple[str, int, int, int]]
) -> None:
    assert shape(merge_ranges(spans, max_gap=max_gap)) == expected


def test_item_capacity_per_pdu() -> None:
    # 12 bytes of answer header, 2 of parameter, 4 of item header: what is left for data
    assert item_capacity(240) == 222
    assert item_capacity(480) == 462
    assert item_capacity(960) == 942
    assert item_capacity(241) == 222  # even, so no fill byte can push an answer over


def test_string_254_at_pdu_240_is_two_items_in_two_requests() -> None:
    ranges = merge_ranges([span("DB", 3, 0, 256, "text")], max_gap=0)
    requests = pack_requests(ranges, 240)
    assert [[(i.start, i.size) for i in r.items] for r in requests] == [[(0, 222)], [(222, 34)]]
    assert all(answer_bytes(r) <= 240 for r in requests)


def test_small_items_share_a_request_up_to_the_item_limit() -> None:
    spans = [span("DB", db, 0, 2) for db in range(1, 46)]  # 45 DBs, one word each
    requests = pack_requests(merge_ranges(spans, max_gap=16), 960)
    assert [len(r.items) for r in requests] == [MAX_ITEMS, MAX_ITEMS, 5]
    # at PDU 240 a request of 19 items is 10 + 2 + 19 * 12 = 240 bytes: 19 is the most
    requests = pack_requests(merge_ranges(spans, max_gap=16), 240)
    assert [len(r.items) for r in requests] == [19, 19, 7]
    assert max(request_bytes(r) for r in requests) == 240


def test_first_fit_fills_earlier_requests() -> None:
    # 150 + 150 do not fit one answer at PDU 240; the 20-byte range after them joins the first
    spans = [span("DB", 1, 0, 150), span("DB", 2, 0, 150), span("DB", 3, 0, 20)]
    requests = pack_requests(merge_ranges(spans, max_gap=0), 240)
    assert [[i.db for i in r.items] for r in requests] == [[1, 3], [2]]


def test_too_small_a_pdu_is_refused() -> None:
    with pytest.raises(ValueError, match="a PDU of 20 bytes is too small"):
        pack_requests(merge_ranges([span("M", 0, 0, 1)], max_gap=0), 20)


def test_device_plan_from_config() -> None:
    config = S7DeviceConfig.model_validate(
        {
            "driver": "s7",
            "host": "plc",
            "tags": {
                "running": {"address": "DB1.DBX0.0"},
                "door": {"address": "DB1.DBX0.1"},
                "count": {"address": "DB1.DBD4", "type": "dint"},
                "text": {"address": "DB1.DBS40", "length": 10},
                "flag": {"address": "M10.0"},
                "analog": {"address": "IW64"},
            },
        }
    )
    ranges = build_ranges(config)
    # 0-7 and 40-51 are 32 bytes apart, more than the default max_gap_bytes of 16
    assert shape(ranges) == [
        ("DB", 1, 0, 8),
        ("DB", 1, 40, 12),
        ("M", 0, 10, 1),
        ("I", 0, 64, 2),
    ]
    assert ranges[0].tags == (("running", 0), ("door", 0), ("count", 4))
    assert ranges[0].describe() == "DB1 bytes 0-7"
    assert ranges[2].describe() == "M byte 10"
    assert len(pack_requests(ranges, 240)) == 1


# ------------------------------------------------------------------------------------ properties

_SPANS = st.lists(
    st.builds(
        span,
        st.sampled_from(["DB", "M", "I", "Q"]),
        st.integers(1, 3),
        st.integers(0, 600),
        st.sampled_from([1, 2, 4, 12, 256, 600]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(spans=_SPANS, max_gap=st.integers(0, 40), pdu=st.sampled_from([240, 241, 480, 960]))
def test_every_plan_covers_each_tag_once_and_fits_the_pdu(
    spans: list[TagSpan], max_gap: int, pdu: int
) -> None:
    # unique names; outside DBs the DB number is 0
    spans = [
        TagSpan(f"t{i}", s.area, s.db if s.area == "DB" else 0, s.start, s.size)
        for i, s in enumerate(spans)
    ]
    ranges = merge_ranges(spans, max_gap=max_gap)
    # each tag lies in exactly one range of its area, at the offset the range says
    placed = {(name, i) for i, r in enumerate(ranges) for name, _ in r.tags}
    assert len(placed) == len(spans)
    for r in ranges:
        for name, offset in r.tags:
            tag = next(s for s in spans if s.name == name)
            assert (tag.area, tag.db, tag.start) == (r.area, r.db, r.start + offset)
            assert offset + tag.size <= r.size
    # ranges of one area never overlap, and more than max_gap bytes lie between them
    for a, b in itertools.pairwise(ranges):
        if (a.area, a.db) == (b.area, b.db):
            assert b.start - (a.start + a.size) > max_gap
    requests = pack_requests(ranges, pdu)
    for request in requests:
        assert 1 <= len(request.items) <= MAX_ITEMS
        assert request_bytes(request) <= pdu
        assert answer_bytes(request) <= pdu
    # the items of each range cover it exactly, in pieces one answer can carry
    for index, r in enumerate(ranges):
        pieces = sorted(
            (i.start, i.size) for q in requests for i in q.items if i.range_index == index
        )
        assert pieces[0][0] == r.start
        assert sum(size for _, size in pieces) == r.size
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(pieces))
        assert all(size <= item_capacity(pdu) for _, size in pieces)
