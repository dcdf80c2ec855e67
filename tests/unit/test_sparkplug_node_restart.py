"""What the Sparkplug sink adds to the edge node for the life of a process: a CONNECT that never
went out gives its bdSeq back, and the newest values survive a restart to seed the births."""

from __future__ import annotations

import json

import pytest

from edge_agent.sinks.sparkplug import DataType, EdgeNode, NodeLayout, NoSessionError
from tests.unit.test_sparkplug_node import (
    INCLUDE,
    MS,
    PLC_TAGS,
    T0,
    S,
    decode,
    layout,
    link,
    started,
    values,
)


def test_a_will_for_a_connect_that_never_went_out_gives_its_bdseq_back() -> None:
    node = EdgeNode(layout(), bd_seq=7)
    assert decode(node.will(T0)).metrics[0].value == 8
    node.withdraw_will()  # the broker could not be reached
    assert node.bd_seq == 7
    with pytest.raises(NoSessionError):
        node.birth(T0)  # that connection does not exist
    assert decode(node.will(T0 + S)).metrics[0].value == 8
    nbirth = decode(node.birth(T0 + S)[0])
    assert nbirth.by_name()["bdSeq"].value == 8
    node.withdraw_will()  # born: a CONNECT did go out; nothing to take back
    assert node.bd_seq == 8 and node.born
    first = EdgeNode(layout())
    first.will(T0)
    first.withdraw_will()
    assert first.bd_seq is None and decode(first.will(T0)).metrics[0].value == 0


def test_the_newest_values_seed_the_births_of_the_next_process() -> None:
    untyped = {**PLC_TAGS, "recipe": None}  # an OPC UA tag: typed by its first value
    before, _host, _ = started(EdgeNode(layout(plc=untyped, old={"x": DataType.Int32})))
    before.process(
        [
            values(T0 + S, count=5, temp=1.5, recipe="A-17", quality={"temp": "uncertain"}),
            values(T0 + S, device="old", x=3),
            link(T0 + 2 * S, "up"),
        ],
        T0 + 2 * S,
    )
    saved = json.loads(json.dumps(before.latest()))

    # The next process: device `old` and tag `name` are no longer configured.
    tags = {k: v for k, v in untyped.items() if k != "name"}
    after = EdgeNode(NodeLayout("Plant1", "edge7", layout().node_metrics, {"plc": tags}, INCLUDE))
    after.restore(saved)
    after.will(T0 + 10 * S)
    births = [decode(m) for m in after.birth(T0 + 10 * S)]
    assert [(b.kind, b.device) for b in births] == [("NBIRTH", None), ("DBIRTH", "plc")]
    dbirth = births[1].by_name()
    assert dbirth["count"].value == 5 and dbirth["count"].timestamp == (T0 + S) // MS
    assert dbirth["temp"].value == 1.5 and dbirth["temp"].quality == 500  # uncertain: STALE
    assert dbirth["recipe"].datatype == DataType.String and dbirth["recipe"].value == "A-17"
    assert dbirth["running"].is_null and "name" not in dbirth
    # What the new process reads is newer, and wins; an older saved value never replaces it.
    again = EdgeNode(layout())
    again.observe([values(T0 + 5 * S, count=9)])
    again.restore(saved)
    again.will(T0)
    assert decode(again.birth(T0)[1]).by_name()["count"].value == 9


def test_a_device_down_at_the_stop_waits_for_its_link_after_the_restart() -> None:
    before, _host, _ = started()
    before.process([values(T0 + S, count=1), link(T0 + 2 * S, "down")], T0 + 2 * S)
    after = EdgeNode(layout())
    after.restore(before.latest())
    after.will(T0 + 3 * S)
    assert [decode(m).kind for m in after.birth(T0 + 3 * S)] == ["NBIRTH"]
