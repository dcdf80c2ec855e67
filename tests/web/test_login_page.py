"""The local page in a real browser (Debian's Chromium, headless): log in, acknowledge, log out.

In English and in Chinese, at a desktop width (1366 px) and a phone's (390 px), against a real
agent process with `open_read: login` (so the page must ask), a user added with the real CLI and
a simulated press whose temperature is over an alarm's limit. Screenshots go to the test's
folder for a person to look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.hot_press import hot_press
from tests.support.page_browser import viewport

PASSWORD = "press-shop-2026"
TEXTS = {
    "en": {
        "login_needed": "Log in to see this agent",
        "wrong": "Wrong user name or password.",
        "who": "li.wei · operator",
        "ack": "Acknowledge",
        "acked": "active, acknowledged",
        "logout": "Log out",
    },
    "zh-CN": {
        "login_needed": "请登录后查看",
        "wrong": "用户名或密码错误。",
        "who": "li.wei · 操作员",
        "ack": "确认",
        "acked": "报警中，已确认",
        "logout": "退出登录",
    },
}


@pytest.fixture(scope="module")
def agent_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with hot_press(
        tmp_path_factory.mktemp("page"),
        alarms=4,  # one to acknowledge in each language and width
        http=", open_read: login",
        users={"li.wei": ("operator", PASSWORD)},
    ) as press:
        yield f"http://127.0.0.1:{press.port}/"


@pytest.mark.parametrize("width", [1366, 390])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_log_in_acknowledge_and_log_out(
    agent_url: str, browser: webdriver.Chrome, lang: str, width: int, tmp_path: Path
) -> None:
    text = TEXTS[lang]
    viewport(browser, width, 900)
    browser.delete_all_cookies()
    browser.get(f"{agent_url}?lang={lang}")
    wait = WebDriverWait(browser, 15)
    login = wait.until(ready.visibility_of_element_located((By.ID, "login")))
    assert text["login_needed"] in login.text
    user = browser.find_element(By.ID, "login-user")
    password = browser.find_element(By.ID, "login-password")
    user.send_keys("li.wei")
    password.send_keys("not the password")
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "login-error"), text["wrong"]))
    password.clear()
    password.send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "who"), text["who"]))
    button = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#alarms button.ack")))
    assert button.text == text["ack"]
    alarm_id = button.get_attribute("data-id")
    browser.save_screenshot(str(tmp_path / f"logged-in-{lang}-{width}.png"))
    button.click()
    row = f"#alarms tr[data-alarm='{alarm_id}']"
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, row), text["acked"]))
    # Nothing runs off the side of the screen (tables scroll inside their section).
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 1, f"the page is {overflow} px wider than the window"
    logout = browser.find_element(By.ID, "logout")
    assert logout.text == text["logout"]
    logout.click()
    wait.until(ready.visibility_of_element_located((By.ID, "login")))
    assert browser.find_element(By.ID, "who").text == ""
    wait.until(lambda b: b.find_element(By.ID, "alarms").text == "")  # nothing left to read
    time.sleep(0.1)
    browser.save_screenshot(str(tmp_path / f"logged-out-{lang}-{width}.png"))
