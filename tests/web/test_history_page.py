"""The engineer's and the operator's page in a real browser, against a real agent with history.

Two weeks of history made by the compute core (tests/support/page_history.py), a Chinese plant
(冲床 P201 on two shifts, 折弯机 B3 by the hour), users added with the real CLI. In English and in
Chinese: the charts show the API's numbers, an operator gives a stop its reason and the Pareto and
the stored OEE change, a viewer sees no controls and is refused, alarms are acknowledged, shelved
and taken out of service with who did it on record, no English is left on the Chinese page, and
screenshots at a panel PC's and a phone's width are kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support.page_browser import api, api_json, keep_screenshot, log_in, viewport
from tests.support.page_history import ZONE, Plant, plant_agent

PASSWORD = "plant-p2-2026"
VIEWER, OPERATOR, ENGINEER = "wang.fang", "li.wei", "zhang.qiang"
USERS = {
    VIEWER: ("viewer", PASSWORD),
    OPERATOR: ("operator", PASSWORD),
    ENGINEER: ("engineer", PASSWORD),
}
TEXTS = {
    "en": {
        "no_data": "the agent was not running",
        "simulated": "simulated (demo data)",
        "acked": "active, acknowledged",
        "shelved": "shelved",
        "out": "out of service",
        "saved": "Saved.",
        "rejects_saved": "Rejects saved.",
        "pct": "{:.1f} %",
    },
    "zh-CN": {
        "no_data": "无数据：网关未运行",
        "simulated": "模拟数据（演示）",
        "acked": "报警中，已确认",
        "shelved": "已搁置",
        "out": "已停用",
        "saved": "已保存。",
        "rejects_saved": "不良品已录入。",
        "pct": "{:.1f}%",
    },
}
# Reason codes an operator picks (p201's configured reasons): 液压压力低, 待料.
PICKED = {"en": ("3", "液压压力低"), "zh-CN": ("12", "待料")}
# Letters that may stay on the Chinese page besides the configuration's ids and names: figures
# and file types known by these names in Chinese plants, and ISO 10816 vibration zones.
ALLOWED_LATIN = {"OEE", "MTBF", "MTTR", "CSV", "XLSX", "A", "B", "C", "D"}

# Every visible text of the page, with the options of visible lists and the hints of visible
# fields; what is marked as another language (the language list's "English") is left out.
_VISIBLE_TEXT = """
const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
const english = (el) => (el.closest("[lang]")?.getAttribute("lang") || "").startsWith("en");
const texts = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const el = node.parentElement;
  if (!el || el.closest("script, style, title, option") || english(el) || !shown(el)) continue;
  if (node.textContent.trim()) texts.push(node.textContent.trim());
}
for (const select of document.querySelectorAll("select")) {
  if (shown(select)) for (const o of select.options) if (!english(o)) texts.push(o.text);
}
for (const input of document.querySelectorAll("input[placeholder]")) {
  if (shown(input)) texts.push(input.placeholder);
}
texts.push(document.title);
return texts;
"""


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    with plant_agent(tmp_path_factory.mktemp("plant"), USERS) as running:
        yield running


def open_as(
    browser: webdriver.Chrome, plant: Plant, lang: str, user: str, width: int = 1366
) -> None:
    """The page in `lang`, logged in as `user`, with 冲床 P201's history drawn."""
    viewport(browser, width)
    log_in(browser, plant.url, lang, user, PASSWORD)
    wait = WebDriverWait(browser, 20)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#history[data-loads]")))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#trend-shift g.slot")))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#timeline rect.segment")))


def on_yesterday(browser: webdriver.Chrome) -> None:
    """Pareto and stops of yesterday (Shanghai), chosen as a person does: a whole day of history
    whatever the hour the test runs (minutes into a day shift, today holds a stop or none)."""
    pareto = browser.find_element(By.ID, "pareto")
    loads = attr(pareto, "data-loads")
    day = (datetime.now(ZONE) - timedelta(days=1)).date().isoformat()
    browser.execute_script(
        "const e = document.getElementById('pareto-date');"
        "e.value = arguments[0]; e.dispatchEvent(new Event('change'));",
        day,
    )
    WebDriverWait(browser, 15).until(
        lambda b: attr(b.find_element(By.ID, "pareto"), "data-loads") != loads
    )


def data_of(browser: webdriver.Chrome, selector: str) -> list[dict[str, str]]:
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => ({...e.dataset}))"
    return browser.execute_script(script, selector)


def query(path: str, **params: str) -> str:
    return path + "?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())


def attr(element: WebElement, name: str) -> str:
    value = element.get_attribute(name)
    assert value is not None, f"no {name} on {element.tag_name}"
    return value


def span(element: WebElement) -> dict[str, str]:
    """The range of times a chart shows, as it asked the API for it."""
    return {"from": attr(element, "data-from"), "to": attr(element, "data-to")}


def losses(windows: list[dict[str, Any]]) -> dict[str, float]:
    """The Pareto's bars as the page should draw them: seconds lost per reason, summed."""
    totals: dict[str, float] = defaultdict(float)
    for w in windows:
        for reason, seconds in w["losses_by_reason_s"].items():
            totals[reason] += seconds
    return {k: v for k, v in totals.items() if v > 0}


def pareto_bars(browser: webdriver.Chrome) -> dict[str, float]:
    return {row["key"]: float(row["seconds"]) for row in data_of(browser, "#pareto g.pareto-row")}


def pick_pareto_day(browser: webdriver.Chrome, days_back: int) -> str:
    """Show the Pareto of a closed production day, as a person picks a date; the date."""
    zone_today = datetime.now(ZONE).date()
    date = (zone_today - timedelta(days=days_back)).isoformat()
    loads = browser.find_element(By.ID, "pareto").get_attribute("data-loads")
    browser.execute_script(
        "const input = document.getElementById('pareto-date');"
        "input.value = arguments[0]; input.dispatchEvent(new Event('change'));",
        date,
    )
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.ID, "pareto").get_attribute("data-loads") != loads
    )
    return date


def alarm_events(browser: webdriver.Chrome, alarm_id: str, event: str) -> list[dict[str, Any]]:
    """The alarm's `event` transitions in the history, once there is one (it commits within a
    second of the command)."""
    now = datetime.now(ZONE)
    since, until = (now - timedelta(days=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    path = query("api/history/alarms", **{"from": since, "to": until})

    def found(b: webdriver.Chrome) -> list[dict[str, Any]]:
        alarms = api_json(b, path)["alarms"]
        return [a for a in alarms if a["id"] == alarm_id and a["event"] == event]

    return WebDriverWait(browser, 10).until(found)


# ------------------------------------------------------------------------------ what is shown


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_charts_show_the_numbers_of_the_api(
    plant: Plant, browser: webdriver.Chrome, lang: str
) -> None:
    open_as(browser, plant, lang, VIEWER)
    text = TEXTS[lang]

    # OEE per shift: one slot per closed window of the API, with its figures (the open one is
    # published a few seconds after the agent starts, and may come after the page asked).
    box = browser.find_element(By.ID, "trend-shift")
    path = query("api/history/oee", machine="p201", window="shift", **span(box))
    windows = [w for w in api_json(browser, path)["windows"] if w["final"]]
    slots = [s for s in data_of(browser, "#trend-shift g.slot") if s["final"] == "true"]
    assert [s["start"] for s in slots] == [w["start"] for w in windows]
    assert len(slots) >= 25  # two shifts a day for two weeks
    closed = list(zip(slots, windows, strict=True))
    for s, w in closed:
        for figure in ("oee", "availability", "performance", "quality"):
            assert float(s[figure]) == pytest.approx(w[figure], abs=1e-9), (figure, w["start"])
        assert float(s["unknownS"]) == pytest.approx(w["unknown_time_s"])
        assert (s["simulated"] == "true") == bool(w.get("simulated"))
    assert any(s["simulated"] == "true" for s in slots), "the demo days are labelled"
    assert text["simulated"] in box.text
    # Time without data shows as a grey share of its window.
    dark = next(w for _, w in closed if w["unknown_time_s"] > 600)
    assert box.find_elements(By.CSS_SELECTOR, f"g.slot[data-start='{dark['start']}'] rect.nodata")
    last = closed[-1][1]
    title = box.find_element(By.CSS_SELECTOR, f"g.slot[data-start='{last['start']}'] title")
    assert text["pct"].format(100 * last["oee"]) in attr(title, "textContent")

    # OEE per hour, yesterday and today.
    box = browser.find_element(By.ID, "trend-hour")
    path = query("api/history/oee", machine="p201", window="hour", **span(box))
    windows = [w for w in api_json(browser, path)["windows"] if w["final"]]
    slots = [s for s in data_of(browser, "#trend-hour g.slot") if s["final"] == "true"]
    assert [s["start"] for s in slots] == [w["start"] for w in windows] and slots

    # Today's timeline: the periods that ended before the agent started are the API's, the
    # time the agent was stopped among them as no data.
    started = api_json(browser, "api/state")["agent"]["started"]
    box = browser.find_element(By.ID, "timeline")
    path = query("api/history/timeline", machine="p201", **span(box))
    periods = api_json(browser, path)["periods"]
    before = [  # an open period (a break the agent started in) has no end yet: "" on the page
        (p["state"], p["reason"] or "", p["start"], p["end"] or "")
        for p in periods
        if p["start"] < started
    ]
    shown = [
        (p["state"], p["reason"], p["start"], p["end"])
        for p in data_of(browser, "#timeline rect.segment")
        if p["start"] < started
    ]
    assert shown == before
    assert "unknown" in [state for state, *_ in shown]

    # The open shift says why it has time without data.
    card = browser.find_element(By.CSS_SELECTOR, "#machines article[data-machine='p201']")
    assert text["no_data"] in card.find_element(By.CLASS_NAME, "nodata-note").text

    # The Pareto of a closed day: one bar per reason, the seconds the API's windows lost.
    pick_pareto_day(browser, 2)
    box = browser.find_element(By.ID, "pareto")
    windows = api_json(
        browser, query("api/history/oee", machine="p201", window="shift", **span(box))
    )["windows"]
    expected = losses(windows)
    bars = pareto_bars(browser)
    assert bars.keys() == expected.keys()
    for reason, seconds in expected.items():
        assert bars[reason] == pytest.approx(seconds, abs=0.01), reason
    assert list(bars.values()) == sorted(bars.values(), reverse=True)

    # Grouped by category: each reason's seconds under its category, unclassified apart.
    category = {
        r["text"]: r["category"] for r in api_json(browser, "api/meta")["machines"][0]["reasons"]
    }
    grouped: dict[str, float] = defaultdict(float)
    for reason, seconds in expected.items():
        grouped[reason if reason == "unclassified" else category[reason]] += seconds
    browser.find_element(By.ID, "pareto-group").click()
    WebDriverWait(browser, 10).until(lambda b: pareto_bars(b).keys() == grouped.keys())
    assert pareto_bars(browser) == pytest.approx(dict(grouped), abs=0.01)
    browser.find_element(By.ID, "pareto-group").click()


def test_times_are_the_machines_whatever_the_browsers_zone(
    plant: Plant, browser: webdriver.Chrome
) -> None:
    # A browser in Los Angeles still shows 冲床 P201's shifts as Shanghai has them.
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/Los_Angeles"})
    try:
        open_as(browser, plant, "en", VIEWER)
        assert browser.execute_script("return new Date(0).getTimezoneOffset()") == 480
        titles = browser.execute_script(
            "return [...document.querySelectorAll('#trend-shift g.slot title')]"
            ".map((t) => t.textContent.split('\\n')[0])"
        )
        shifts = ("08:00\u201320:00", "20:00\u201308:00")  # an en dash between the times
        assert titles and all(t.endswith(shifts) for t in titles), titles
        ticks = browser.find_elements(By.CSS_SELECTOR, "#timeline text.axis")
        assert [t.text for t in ticks][:2] == ["00:00", "03:00"]
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_the_language_is_the_configurations_until_switched(
    plant: Plant, browser: webdriver.Chrome
) -> None:
    open_as(browser, plant, "zh-CN", VIEWER)
    browser.execute_script("localStorage.clear()")
    browser.get(plant.url)  # no ?lang=: the agent's language (zh-CN in its configuration)
    wait = WebDriverWait(browser, 15)
    wait.until(ready.text_to_be_present_in_element((By.ID, "history-title"), "历史数据：冲床 P201"))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    on_yesterday(browser)
    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    wait.until(ready.text_to_be_present_in_element((By.ID, "history-title"), "History: 冲床 P201"))
    assert browser.find_element(By.ID, "machines-title").text == "Machines"
    assert "Unclassified" in browser.find_element(By.ID, "pareto").text
    browser.get(plant.url)  # the choice is remembered on this browser
    wait.until(ready.text_to_be_present_in_element((By.ID, "history-title"), "History: 冲床 P201"))
    browser.execute_script("localStorage.clear()")


def test_a_machine_without_a_calendar_is_shown_by_the_hour(
    plant: Plant, browser: webdriver.Chrome
) -> None:
    open_as(browser, plant, "zh-CN", VIEWER)
    browser.find_element(By.CSS_SELECTOR, "article[data-machine='b3'] button.machine-name").click()
    wait = WebDriverWait(browser, 15)
    wait.until(ready.text_to_be_present_in_element((By.ID, "history-title"), "折弯机 B3"))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#trend-hour g.slot")))
    assert not browser.find_element(By.ID, "trend-shift-panel").is_displayed()
    pareto = browser.find_element(By.ID, "pareto")
    assert pareto.get_attribute("data-window") == "hour"
    windows = api_json(
        browser, query("api/history/oee", machine="b3", window="hour", **span(pareto))
    )
    assert pareto_bars(browser) == pytest.approx(losses(windows["windows"]), abs=0.01)
    # A week to the chosen date: seven days of hours.
    loads = attr(pareto, "data-loads")
    Select(browser.find_element(By.ID, "pareto-mode")).select_by_value("week")
    wait.until(lambda b: attr(b.find_element(By.ID, "pareto"), "data-loads") != loads)
    week = span(pareto)
    assert datetime.fromisoformat(week["to"]) - datetime.fromisoformat(week["from"]) == timedelta(
        days=7
    )
    windows = api_json(browser, query("api/history/oee", machine="b3", window="hour", **week))
    assert len(windows["windows"]) > 24
    assert pareto_bars(browser) == pytest.approx(losses(windows["windows"]), abs=0.01)
    assert "此设备未配置班次日历" in browser.find_element(By.ID, "reports-section").text
    pressed = browser.find_element(By.CSS_SELECTOR, "article[data-machine='b3'] .machine-name")
    assert pressed.get_attribute("aria-pressed") == "true"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_viewer_sees_everything_but_no_controls_and_is_refused(
    plant: Plant, browser: webdriver.Chrome, lang: str
) -> None:
    open_as(browser, plant, lang, VIEWER)
    on_yesterday(browser)
    WebDriverWait(browser, 15).until(
        ready.presence_of_element_located((By.CSS_SELECTOR, "#alarms tr[data-alarm]"))
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#stops tr[data-stop]"), "stops are listed"
    for controls in ("#alarms button", "#stops select", "#stops button", "#rejects-section input"):
        assert not [e for e in browser.find_elements(By.CSS_SELECTOR, controls) if e.is_displayed()]
    assert not browser.find_element(By.ID, "rejects-section").is_displayed()

    stop = attr(browser.find_element(By.CSS_SELECTOR, "#stops tr[data-stop]"), "data-stop")
    for path, body in (
        (f"api/history/stops/{stop}/reason", {"code": "1"}),
        ("api/history/rejects", {"machine": "p201", "count": 1, "reason": "毛刺"}),
        ("api/alarms/p201_hot5/ack", {}),
    ):
        status, _, answer = api(browser, path, body)
        assert status == 403, (path, answer)

    # The shift report in the page's language, to take away.
    for kind, content_type in (("csv", "text/csv"), ("xlsx", "spreadsheetml")):
        link = browser.find_element(By.ID, f"report-{kind}")
        href = attr(link, "href")
        assert f"lang={lang}" in href and "machine=p201" in href and "shift=" in href
        status, answer_type, _ = api(browser, href)
        assert status == 200 and content_type in answer_type, (href, status, answer_type)


# ------------------------------------------------------------------------------ what is done


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_an_operator_gives_a_stop_its_reason(
    plant: Plant, browser: webdriver.Chrome, lang: str
) -> None:
    open_as(browser, plant, lang, OPERATOR)
    code, text = PICKED[lang]
    pick_pareto_day(browser, 2)  # a closed day: nothing live moves its figures meanwhile
    pareto = browser.find_element(By.ID, "pareto")
    windows_path = query("api/history/oee", machine="p201", window="shift", **span(pareto))
    before_windows = api_json(browser, windows_path)["windows"]
    before = pareto_bars(browser)
    assert before == pytest.approx(losses(before_windows), abs=0.01)

    row = browser.find_element(By.CSS_SELECTOR, "#stops tr[data-stop]")
    stop_id = attr(row, "data-stop")
    Select(row.find_element(By.CSS_SELECTOR, "select.stop-reason")).select_by_value(code)
    row.find_element(By.CSS_SELECTOR, "input.stop-note").send_keys("模具已修")
    row.find_element(By.CSS_SELECTOR, "button.save-reason").click()

    wait = WebDriverWait(browser, 15)
    wait.until(ready.text_to_be_present_in_element((By.ID, "stops-status"), TEXTS[lang]["saved"]))
    wait.until(lambda b: not b.find_elements(By.CSS_SELECTOR, f"#stops tr[data-stop='{stop_id}']"))
    wait.until(lambda b: pareto_bars(b) != before)
    after = pareto_bars(browser)
    moved = before["unclassified"] - after.get("unclassified", 0.0)
    assert moved > 0, (before, after)
    assert after.get(text, 0.0) == pytest.approx(before.get(text, 0.0) + moved, abs=0.01)

    # The stored windows were corrected, and the stop names who gave its reason.
    after_windows = api_json(browser, windows_path)["windows"]
    assert losses(after_windows) == pytest.approx(after, abs=0.01)
    changed = [w for w in after_windows if w not in before_windows]
    assert changed and all(w.get("corrected_by") == OPERATOR for w in changed)
    covered = {"from": before_windows[0]["start"], "to": before_windows[-1]["end"]}
    stops = api_json(browser, query("api/history/stops", machine="p201", **covered))["stops"]
    stop = next(s for s in stops if str(s["id"]) == stop_id)
    assert (stop["reason"], stop["classified_by"], stop["note"]) == (text, OPERATOR, "模具已修")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_an_operator_acknowledges_an_alarm(
    plant: Plant, browser: webdriver.Chrome, lang: str
) -> None:
    open_as(browser, plant, lang, OPERATOR)
    wait = WebDriverWait(browser, 15)
    button = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#alarms button.ack")))
    alarm_id = attr(button, "data-id")
    assert not browser.find_elements(By.CSS_SELECTOR, "#alarms button.out-of-service")
    button.click()
    row = f"#alarms tr[data-alarm='{alarm_id}']"
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, row), TEXTS[lang]["acked"]))
    assert [e["user"] for e in alarm_events(browser, alarm_id, "ack")] == [OPERATOR]
    # The value that raised it, with the tag's unit (the hot alarms read the spindle in °C).
    hot = browser.find_element(By.CSS_SELECTOR, "#alarms tr[data-alarm='p201_hot1'] .alarm-value")
    assert re.fullmatch(r"\S+ [\d.]+ °C", hot.text), hot.text
    # And the limit it crossed, in the same unit ("high limit 1 °C", "超高限 1 °C").
    detail = browser.find_element(By.CSS_SELECTOR, "#alarms tr[data-alarm='p201_hot1'] .detail")
    assert re.search(r"[\d.]+ °C$", detail.text), detail.text

    # The machine's card counts its active alarms.
    def badge_matches(b: webdriver.Chrome) -> bool:
        active = [
            a
            for a in api_json(b, "api/state")["alarms"]
            if a["machine"] == "p201" and a["state"] in ("unack_active", "ack_active")
        ]
        badge = b.find_elements(By.CSS_SELECTOR, "article[data-machine='p201'] .badge")
        return bool(badge) and badge[0].get_attribute("data-count") == str(len(active))

    wait.until(badge_matches)


def test_an_operator_shelves_an_alarm_with_a_reason(
    plant: Plant, browser: webdriver.Chrome
) -> None:
    open_as(browser, plant, "zh-CN", OPERATOR)
    wait = WebDriverWait(browser, 15)
    row = "#alarms tr[data-alarm='p201_hot5']"
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, f"{row} button.shelve"))).click()
    dialog = wait.until(ready.visibility_of_element_located((By.ID, "alarm-dialog")))
    assert "主轴温度偏高 5" in dialog.text
    browser.find_element(By.ID, "alarm-confirm").click()  # no reason: not sent
    assert dialog.is_displayed()
    browser.find_element(By.ID, "alarm-reason").send_keys("传感器更换中")
    Select(browser.find_element(By.ID, "alarm-duration")).select_by_value("3600")
    browser.find_element(By.ID, "alarm-confirm").click()
    wait.until(ready.invisibility_of_element_located((By.ID, "alarm-dialog")))
    wait.until(
        ready.text_to_be_present_in_element((By.CSS_SELECTOR, row), TEXTS["zh-CN"]["shelved"])
    )
    shelves = alarm_events(browser, "p201_hot5", "shelve")
    assert [(e["user"], e["reason"]) for e in shelves] == [(OPERATOR, "传感器更换中")]


def test_an_engineer_takes_an_alarm_out_of_service_and_back(
    plant: Plant, browser: webdriver.Chrome
) -> None:
    open_as(browser, plant, "en", ENGINEER)
    wait = WebDriverWait(browser, 15)
    row = "#alarms tr[data-alarm='p201_vibration']"
    wait.until(
        ready.element_to_be_clickable((By.CSS_SELECTOR, f"{row} button.out-of-service"))
    ).click()
    wait.until(ready.visibility_of_element_located((By.ID, "alarm-reason"))).send_keys(
        "bearing replaced"
    )
    Select(browser.find_element(By.ID, "alarm-duration")).select_by_value("28800")
    browser.find_element(By.ID, "alarm-confirm").click()
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, row), TEXTS["en"]["out"]))
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, f"{row} button.in-service"))).click()
    wait.until(lambda b: TEXTS["en"]["out"] not in b.find_element(By.CSS_SELECTOR, row).text)
    taken = alarm_events(browser, "p201_vibration", "out_of_service")
    assert [(e["user"], e["reason"]) for e in taken] == [(ENGINEER, "bearing replaced")]
    assert [e["user"] for e in alarm_events(browser, "p201_vibration", "in_service")] == [ENGINEER]


def test_an_operator_enters_rejects(plant: Plant, browser: webdriver.Chrome) -> None:
    open_as(browser, plant, "en", OPERATOR)

    def open_window(kind: str) -> dict[str, Any] | None:
        today = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
        since, until = (
            (today - timedelta(days=1)).isoformat(),
            (today + timedelta(days=1)).isoformat(),
        )
        path = query("api/history/oee", machine="p201", window=kind, **{"from": since, "to": until})
        return next((w for w in api_json(browser, path)["windows"] if not w["final"]), None)

    def open_rejects() -> int:
        shift = open_window("shift")
        assert shift is not None
        return int(shift["reject_count"])

    def fewest_good() -> int:
        windows = [w for w in (open_window("shift"), open_window("hour")) if w is not None]
        return min(int(w["good_count"]) for w in windows) if windows else 0

    # Just after a shift or an hour begins, the open windows may hold fewer good parts than are
    # entered here (the agent was stopped before the test): more rejects than good parts are
    # refused.
    WebDriverWait(browser, 90, poll_frequency=1).until(lambda _: fewest_good() >= 2)
    before = open_rejects()
    browser.find_element(By.ID, "reject-count").send_keys("2")
    browser.find_element(By.ID, "reject-reason").send_keys("毛刺")
    browser.find_element(By.ID, "reject-save").click()
    WebDriverWait(browser, 15).until(
        ready.text_to_be_present_in_element((By.ID, "reject-status"), TEXTS["en"]["rejects_saved"])
    )
    assert open_rejects() >= before + 2
    # More than the shift made is refused, and the operator is told why in the page's words.
    browser.find_element(By.ID, "reject-count").send_keys("9999")
    browser.find_element(By.ID, "reject-save").click()
    WebDriverWait(browser, 15).until(
        ready.text_to_be_present_in_element((By.ID, "reject-status"), "Not saved: this shift")
    )
    assert open_rejects() < before + 9999


# ------------------------------------------------------------------------------ how it reads


def test_no_english_is_left_on_the_chinese_page(plant: Plant, browser: webdriver.Chrome) -> None:
    open_as(browser, plant, "zh-CN", OPERATOR)
    on_yesterday(browser)
    WebDriverWait(browser, 15).until(
        ready.presence_of_element_located((By.CSS_SELECTOR, "#stops select.stop-reason"))
    )
    meta = api_json(browser, "api/meta")
    # Ids and names from the configuration may hold Latin letters (P201, mm/s, ISO 10816-3), and
    # so may the names people log in with.
    named = [meta["agent"]["id"], OPERATOR]
    for m in meta["machines"]:
        named += [m["id"], m["display_name"], *(r["text"] for r in m["reasons"])]
        named += [s["name"] for s in m["shifts"]] + [s["display_name"] for s in m["shifts"]]
    for d in meta["devices"]:
        named += [d["id"], d["display_name"]]
        named += [v for t in d["tags"] for v in (t["id"], t["display_name"], t["unit"] or "")]
    for a in meta["alarms"]:
        named += [a["id"], a["display_name"], a["message"] or ""]
    allowed = ALLOWED_LATIN | set(re.findall(r"[A-Za-z]+", " ".join(named)))
    texts = browser.execute_script(_VISIBLE_TEXT)
    assert any("冲床 P201" in t for t in texts) and any("停机原因" in t for t in texts)
    english = {
        word: text
        for text in texts
        for word in re.findall(r"[A-Za-z]+", text)
        if word not in allowed
    }
    assert not english, f"English on the Chinese page: {english}"


@pytest.mark.parametrize("width", [1366, 400])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_screenshots_at_a_panel_pc_and_a_phone(
    plant: Plant, browser: webdriver.Chrome, lang: str, width: int, artifacts: Path
) -> None:
    open_as(browser, plant, lang, OPERATOR, width)
    WebDriverWait(browser, 15).until(
        ready.presence_of_element_located((By.CSS_SELECTOR, "#pareto g.pareto-row"))
    )
    # Nothing runs off the side of the screen (tables scroll inside their section).
    inner, scroll = browser.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth]"
    )
    assert inner == width
    assert scroll - inner <= 1, f"the page is {scroll - inner} px wider than the window"
    charts = browser.execute_script(
        "return [...document.querySelectorAll('svg.chart')].map((s) => s.getBoundingClientRect().right)"
    )
    assert charts and max(charts) <= width
    browser.execute_script("window.scrollTo(0, 0)")
    shot = artifacts / f"page-{lang}-{width}.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    if width == 1366:
        keep_screenshot(shot, f"page-{lang}.png")
