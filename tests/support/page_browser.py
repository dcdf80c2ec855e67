"""Driving the page in a browser: an exact viewport, logging in through its form, the API read
with the page's own session, screenshots kept where the README shows them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]

# The API as the page's session sees it: GET, or POST with the session's CSRF token.
_FETCH = """
const [path, method, body, done] = arguments;
fetch("api/me", {cache: "no-store"}).then((r) => r.json()).then((me) => {
  const headers = {"Content-Type": "application/json"};
  if (me.csrf) headers["X-CSRF-Token"] = me.csrf;
  const init = method === "GET" ? {cache: "no-store"} : {method, headers, body: JSON.stringify(body)};
  return fetch(path, init);
}).then(async (r) => done([r.status, r.headers.get("Content-Type"),
  (r.headers.get("Content-Type") || "").includes("json") ? await r.json() : null]))
  .catch((e) => done([0, null, String(e)]));
"""


def viewport(driver: webdriver.Chrome, width: int, height: int = 768) -> None:
    """An exact CSS viewport: a headless window cannot be made narrower than 500 px."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def log_in(driver: webdriver.Chrome, url: str, lang: str, user: str, password: str) -> None:
    """Open the page afresh in `lang` and log in through its form."""
    driver.delete_all_cookies()
    driver.get(f"{url}?lang={lang}")
    wait = WebDriverWait(driver, 15)
    wait.until(ready.visibility_of_element_located((By.ID, "login-user"))).send_keys(user)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "who"), user))


def api(driver: webdriver.Chrome, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (no body) or POST `path` with the page's session; (status, content type, JSON)."""
    method = "GET" if body is None else "POST"
    return driver.execute_async_script(_FETCH, path, method, body)


def api_json(driver: webdriver.Chrome, path: str) -> Any:
    status, _, answer = api(driver, path)
    assert status == 200, (path, status, answer)
    return answer


def keep_screenshot(source: Path, name: str) -> None:
    """Copy a screenshot to deploy/screenshots/, where the README shows it, when asked to
    (`make screenshots`): a plain test run leaves the work tree as it was."""
    if not os.environ.get("EDGE_AGENT_KEEP_SCREENSHOTS"):
        return
    target = REPO / "deploy" / "screenshots" / name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
