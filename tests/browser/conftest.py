"""A real headless Chromium (Debian's chromium + chromedriver, driven by selenium) that reaches nothing
but 127.0.0.1, one per test module; its microphone is Chromium's fake device playing jfk.wav once. The
web app's tests run against whisper base (the real-speech tests' server)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.e2e.conftest import very_long_wav as very_long_wav  # a job still running when the test looks

# whisper base as the default model, Silero VAD for live captions, an API key: one per test module.
from tests.e2e.test_real_speech import real_server as real_server

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium (test extra)")

SCREENS = Path("/tmp/screens")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(jfk_wav: Path, downloads: Path) -> Iterator[webdriver.Chrome]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("the browser tests need Debian's chromium and chromium-driver (apt-get install)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={jfk_wav}%noloop",  # once, then silence
        "--autoplay-policy=no-user-gesture-required",
        # Nothing but the server: a page that needed a CDN would fail here.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-background-networking",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(chromedriver))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.implicitly_wait(0)
    SCREENS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture
def console(browser: webdriver.Chrome) -> Iterator[list[dict]]:
    """What the page logs to the console during a test; the test fails on any error among it."""
    browser.get_log("browser")  # what earlier tests left
    entries: list[dict] = []
    yield entries
    entries.extend(browser.get_log("browser"))
    errors = [entry for entry in entries if entry["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"


@pytest.fixture
def page(browser: webdriver.Chrome, real_server: Server, console: list[dict]) -> webdriver.Chrome:
    """The app at `/` with the API key already stored, as after a user entered it once."""
    browser.get(f"{real_server.base_url}/web/icon.svg")  # same origin, without loading the app
    browser.execute_script("localStorage.setItem('whisper-api.key', arguments[0])", API_KEY)
    browser.get(f"{real_server.base_url}/")
    return browser
