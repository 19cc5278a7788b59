"""Screenshot the report of a workspace (the README's picture), with one version selected.

Usage: ``python scripts/report_screenshot.py WORKSPACE OUT.png [--select ARTEFACT]``, e.g. after
``make example WORKDIR=/tmp/demo``: ``python scripts/report_screenshot.py /tmp/demo
docs/img/report.png``. Needs the distribution's chromium and chromedriver.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    """Build the report, open it headless, select the version, save the PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--select", default="model", help="artefact whose version to select")
    parser.add_argument("--size", default="1200,760", help="window width,height")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        subprocess.run(
            [sys.executable, "-m", "proml_cli", "report", "-o", str(page)],
            cwd=args.workspace,
            check=True,
        )
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
            options.add_argument(flag)
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")
        options.add_argument(f"--window-size={args.size}")
        driver = shutil.which("chromedriver") or "chromedriver"
        browser = webdriver.Chrome(service=Service(driver), options=options)
        try:
            browser.get(page.as_uri())
            for node in browser.find_elements(By.CSS_SELECTOR, "#lineage .node.version"):
                if node.text.startswith(f"{args.select} #"):
                    node.click()
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
