"""Fixtures for the graph and report tests: the bundled example's workspace, a headless browser.

The example (examples/breast-cancer/run.sh, about 30 s) runs once per session on the embedded
chain; the tests only read its workspace. The browser is Debian's ``chromium`` driven through
its ``chromedriver`` (never a browser that downloads itself): absent, the browser tests skip,
except on CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / "examples" / "breast-cancer" / "run.sh"


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace of the bundled example, run to the end."""
    from _project import run_example

    if importlib.util.find_spec("sklearn") is None and not os.environ.get("CI"):
        pytest.skip("scikit-learn is not installed (pip install -e '.[examples]')")
    work = tmp_path_factory.mktemp("example") / "work"
    run_example(RUN_SH, work, timeout=300)
    return work


def _browser_binaries() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium with name resolution blocked and its network events logged."""
    found = _browser_binaries()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium and chromedriver are required on CI (apt-get install chromium "
                "chromium-driver; .ci/run does it)"
            )
        pytest.skip(
            "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Network blocked: no name resolves, so any request the page made would fail (and show).
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        session.execute_cdp_cmd("Network.enable", {})
        yield session
    finally:
        session.quit()
