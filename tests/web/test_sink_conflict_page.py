"""The page's sink table when another agent publishes as the same Sparkplug edge node: in a real
browser, in English and Chinese, at a panel PC's and a phone's width; /health says it too.

Two agents (their own ids, one copied `edge_node_id`) on a real mosquitto; the first, whose page
is read, sees the second's birth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.hot_press import edge_agent
from tests.support.page_browser import log_in, viewport
from tests.support.servers import Mosquitto, free_port, wait_for_port

VIEWER, PASSWORD = "wang.fang", "plant-p2-2026"
PILL = {"en": "ID in use elsewhere", "zh-CN": "ID冲突"}


def _config(folder: Path, agent_id: str, broker: int, press: int, http: int | None) -> Path:
    folder.mkdir()
    http_line = (
        f"  http: {{port: {http}, open_read: login}}\n" if http else "  http: {enabled: false}\n"
    )
    path = folder / "agent.yaml"
    path.write_text(
        f"agent:\n  id: {agent_id}\n  buffer_path: {folder / 'outbox.db'}\n"
        f"  history_path: {folder / 'history.db'}\n  access_path: {folder / 'access.json'}\n"
        + http_line
        + "devices:\n  press:\n    driver: modbus\n    host: 127.0.0.1\n"
        f"    port: {press}\n    tags:\n      temp: {{table: input, address: 0, type: float32}}\n"
        "sinks:\n  uns:\n    type: sparkplug\n    host: 127.0.0.1\n"
        f"    port: {broker}\n    group_id: 工厂1\n    edge_node_id: 冲压线1\n"
    )
    return path


def _health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def _until(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def twins(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Two agents born as one edge node; the first one's HTTP port, once it has seen the other."""
    tmp = tmp_path_factory.mktemp("twins")
    press_port, http_port = free_port(), free_port()
    simulate = ["simulate", "--machines", "1", "--port", str(press_port), "--opcua-port", "0"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "edge_agent", *simulate],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    first = _config(tmp / "a", "press-a", mosquitto.port, press_port, http_port)
    second = _config(tmp / "b", "press-b", mosquitto.port, press_port, None)
    added = edge_agent(first, "user", "add", VIEWER, "--role", "viewer", stdin=f"{PASSWORD}\n" * 2)
    assert added.returncode == 0, added.stderr
    try:
        for config in (first, second):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "edge_agent", "run", str(config)],
                    stdout=subprocess.DEVNULL,
                    stderr=(config.parent / "agent.log").open("wb"),
                )
            )
            if config == first:  # born before the second starts: it sees the second's birth
                wait_for_port(http_port, 20, processes[-1])
                _until(lambda: 'edge_sink_connected{sink="uns"} 1.0' in _metrics(http_port))
        _until(lambda: "another Sparkplug edge node" in json.dumps(_health(http_port)[1]))
        yield http_port
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(15)


def test_health_names_the_other_node(twins: int) -> None:
    status, answer = _health(twins)
    assert status == 503
    text = json.dumps(answer, ensure_ascii=False)
    assert "sink uns: another Sparkplug edge node is born as 工厂1/冲压线1" in text


@pytest.mark.parametrize("width", [1366, 400])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_sink_table_marks_the_conflict(
    twins: int, browser: webdriver.Chrome, lang: str, width: int, artifacts: Path
) -> None:
    viewport(browser, width)
    log_in(browser, f"http://127.0.0.1:{twins}/", lang, VIEWER, PASSWORD)
    pill = WebDriverWait(browser, 15).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#sinks span.pill.conflict")
    )[0]
    assert pill.text == f"uns: {PILL[lang]}"
    assert (pill.get_attribute("title") or "").startswith(
        "another Sparkplug edge node is born as 工厂1/冲压线1 on 127.0.0.1:"
    )
    browser.execute_script("arguments[0].scrollIntoView()", pill)
    # Seen without scrolling sideways, on a phone too.
    right = browser.execute_script("return arguments[0].getBoundingClientRect().right", pill)
    assert right <= width
    inner, scroll = browser.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth]"
    )
    assert scroll - inner <= 1, f"the page is {scroll - inner} px wider than the window"
    assert browser.save_screenshot(str(artifacts / f"sink-conflict-{lang}-{width}.png"))
