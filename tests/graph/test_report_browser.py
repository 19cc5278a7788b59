"""The report in a real headless browser: offline, no request, one node per version, details
on click, the filter box, a screenshot.

Chromium runs with every host name unresolvable; the page's own Content-Security-Policy forbids
any fetch; and the DevTools protocol's network events (the performance log) must show the page
itself as the only request, with no resource entry in the page's performance timeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _project import ok, proml
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def page(example: Path, tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    ok(proml(example, "report", "-o", str(out)))
    return out


def network_requests(browser: Any) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_report_opens_offline_and_makes_no_request(
    browser: Any, page: Path, example: Path, tmp_path: Path
) -> None:
    browser.get(page.as_uri())

    assert browser.title == "proml report: breast-cancer"
    assert network_requests(browser) == [page.as_uri()]
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []  # no script error, no CSP violation
    # One node per version, as the ledger has them.
    document = json.loads(ok(proml(example, "graph", "--format", "json")).stdout)
    versions = [n for n in document["nodes"] if n["type"] == "version"]
    nodes = browser.find_elements(By.CSS_SELECTOR, "#lineage .node.version")
    assert len(nodes) == len(versions) == 3
    assert sorted(n.get_attribute("data-id") for n in nodes) == sorted(v["id"] for v in versions)
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clicking_a_node_shows_its_details(browser: Any, page: Path, tmp_path: Path) -> None:
    browser.get(page.as_uri())
    model = browser.find_element(By.CSS_SELECTOR, "#lineage .node.version:nth-of-type(3)")
    assert "model" in model.text

    model.click()

    details = browser.find_element(By.ID, "details")
    assert details.find_element(By.TAG_NAME, "h2").text == "model #1"
    assert "selected" in (model.get_attribute("class") or "")
    text = details.text
    assert "approved" in text
    assert "classifier" in text
    assert "Gate: verified" in text
    checks = [li.text for li in details.find_elements(By.CSS_SELECTOR, "ul.checks li")]
    assert [c.split(":")[0].lstrip("✓ ") for c in checks] == ["1", "2", "3", "4", "5"]
    # Params of the training run and metrics of the evaluation, from their records.
    assert "params of step train" in text
    assert "max_iter" in text
    assert "metrics of step evaluate" in text
    # The timeline: who, which role, when, the note of the approval.
    rows = details.find_elements(By.CSS_SELECTOR, "table.timeline tbody tr")
    assert len(rows) == 3
    assert "approve: evaluated → approved" in rows[2].text
    assert "model-verifier" in rows[2].text
    assert "metrics reviewed" in rows[2].text
    # An input link selects that version.
    details.find_element(By.LINK_TEXT, "train-set #1").click()
    assert details.find_element(By.TAG_NAME, "h2").text == "train-set #1"
    assert "schema and label balance checked" in details.text
    browser.save_screenshot(str(tmp_path / "details.png"))


def test_filter_box_narrows_graph_and_tables(browser: Any, page: Path) -> None:
    browser.get(page.as_uri())
    sections = browser.find_elements(By.CSS_SELECTOR, "#artefacts section.artefact")
    assert [s.get_attribute("data-artefact") for s in sections] == [
        "model",
        "test-set",
        "train-set",
    ]

    box = browser.find_element(By.ID, "filter")
    box.send_keys("test-set")
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.ID, "matches").text == "1 of 3 versions match"
    )

    dimmed = browser.find_elements(By.CSS_SELECTOR, "#lineage .node.version.dim")
    shown = browser.find_elements(By.CSS_SELECTOR, "#lineage .node.version:not(.dim)")
    assert len(dimmed) == 2
    assert len(shown) == 1
    assert shown[0].text.startswith("test-set #1")
    visible = [s.get_attribute("data-artefact") for s in sections if s.is_displayed()]
    assert visible == ["test-set"]

    box.clear()
    box.send_keys("no such thing")
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.ID, "matches").text == "0 of 3 versions match"
    )
    assert not any(s.is_displayed() for s in sections)


#: A note that would fetch and run script if the page ever parsed data as HTML.
HOSTILE = "<img src=https://example.org/x.png onerror=\"document.title='pwned'\">"


def test_long_history_is_paged_and_hostile_text_stays_text(browser: Any, tmp_path: Path) -> None:
    from _graph_history import Chain

    from proml_cli.graph import build_graph
    from proml_cli.graph.report import render_html, report_data

    chain = Chain()
    chain.kind("dataset", ["received", "validated"], {"validate": ("received", "validated")})
    chain.emit("ArtefactDefined", artefact="data", kind="dataset")
    for n in range(60):
        chain.run("prepare", [("data", f"d{n}")])
        chain.decide("data", f"d{n}", "validate", HOSTILE)
    history = chain.history()
    graph = build_graph(history, chain.records)
    page = tmp_path / "long.html"
    page.write_text(render_html(report_data("p", history, graph, chain.records, {}, {}), graph))

    browser.get(page.as_uri())

    assert len(browser.find_elements(By.CSS_SELECTOR, "#lineage .node.version")) == 60
    section = browser.find_element(By.CSS_SELECTOR, "section.artefact")
    rows = section.find_elements(By.CSS_SELECTOR, "table.versions-table tbody tr")
    assert len(rows) == 25
    assert rows[0].text.startswith("data #60")  # newest first
    pager = section.find_element(By.CSS_SELECTOR, ".versions .pager")
    assert "page 1 of 3 (60)" in pager.text
    pager.find_elements(By.TAG_NAME, "button")[1].click()
    pager = section.find_element(By.CSS_SELECTOR, ".versions .pager")
    assert "page 2 of 3 (60)" in pager.text
    first = section.find_element(By.CSS_SELECTOR, "table.versions-table tbody tr")
    assert first.text.startswith("data #35")
    # The timeline: 120 steps in pages of 25.
    assert "page 1 of 5 (120)" in section.find_element(By.CSS_SELECTOR, ".timeline-box").text
    # The note is shown as text, never parsed: no image, no request, no script ran.
    browser.find_element(By.CSS_SELECTOR, "#node-v1").click()
    assert HOSTILE in browser.find_element(By.ID, "details").text
    assert browser.find_elements(By.CSS_SELECTOR, "#details img") == []
    assert browser.title == "proml report: p"
    assert network_requests(browser) == [page.as_uri()]
