"""The page's own files: light enough for a panel PC on a slow link, complete without internet.

Plants are often offline: nothing may come from a CDN or any other host, and every script and
stylesheet the page names must be among the files the agent serves (static/, no subfolders).
"""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "edge_agent" / "web"
STATIC = WEB / "static"
LIMIT_BYTES = 500 * 1024
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched


def page_files() -> list[Path]:
    return [WEB / "index.html", *sorted(STATIC.iterdir())]


def test_the_page_weighs_under_500_kb() -> None:
    sizes = {f.name: f.stat().st_size for f in page_files()}
    total = sum(sizes.values())
    print(f"page weight: {total / 1024:.1f} KB in {len(sizes)} files")
    assert len(sizes) > 3, "index.html with its scripts and styles"
    assert total < LIMIT_BYTES, sizes


def test_nothing_is_fetched_from_another_host() -> None:
    for f in page_files():
        text = f.read_text(encoding="utf-8")
        urls = [u for u in re.findall(r"https?://[^\s\"'<>)`]+", text) if u != SVG_NAMESPACE]
        assert not urls, f"{f.name} names {urls}"
        assert not re.search(r"""(?:src|href)\s*=\s*["']//|url\(\s*["']?//""", text), f.name


def test_every_file_the_page_names_is_there() -> None:
    served = {f.name for f in STATIC.iterdir() if f.suffix in (".js", ".css", ".svg")}
    assert served == {f.name for f in STATIC.iterdir()}, "the agent serves .js, .css and .svg"
    assert all(f.is_file() for f in STATIC.iterdir()), "the agent serves no subfolders"
    index = (WEB / "index.html").read_text(encoding="utf-8")
    named = re.findall(r"""(?:src|href)="static/([^"]+)\"""", index)
    assert "app.js" in named and "page.css" in named
    for f in STATIC.glob("*.js"):
        named += re.findall(r"""from\s+"\./([^"]+)\"""", f.read_text(encoding="utf-8"))
    missing = sorted(set(named) - served)
    assert not missing, f"named but not in static/: {missing}"
    unused = sorted(served - set(named))
    assert not unused, f"in static/ but named nowhere: {unused}"
