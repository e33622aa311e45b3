"""A real headless Chromium (Debian's chromium + chromedriver) driven by Selenium, for dashboard tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("INGEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("INGEST_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def require_chromium() -> None:
    """Skip without a browser on a user's machine; under CI=true a missing browser is a failure."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).is_file() or shutil.which(p))]
    if not missing:
        return
    reason = f"no {' or '.join(missing)}: apt-get install chromium chromium-driver to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def chromium(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A started Chromium session (quit at the end)."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: object, name: str) -> None:
    """Save a full-page PNG under $INGEST_SCREENSHOTS (how docs/screenshots/ is made); nothing otherwise."""
    folder = os.environ.get("INGEST_SCREENSHOTS")
    if not folder:
        return
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(driver, WebDriver)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(max(int(width), 360), min(int(height) + 120, 4000))
    Path(folder).mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
