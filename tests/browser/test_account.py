"""Signing in to the web app with an account on a server that charges balances: a person's way from the
sign-in form to what a transcription cost, and out again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import SCREENS
from tests.browser.test_web_app import by_id, choose_file, wait
from tests.e2e.conftest import Server, start_server, stop_server
from tests.support.media import pcm_wav

PASSWORD = "correct horse battery"


def whisper_api(data_dir: Path, *args: str, stdin: str = "") -> None:
    """The `whisper-api` command on the server's data directory, as its operator runs it."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WHISPER_API_")}
    subprocess.run(
        [sys.executable, "-m", "whisper_api", *args],
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        env={**environment, "WHISPER_API_DATA_DIR": str(data_dir)},
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("account") / "data"


@pytest.fixture(scope="module")
def balance_server(models_dir: Path, data_dir: Path) -> Iterator[Server]:
    """The small synthetic model, balances on, and alice (100 tokens) made as an operator makes her."""
    whisper_api(data_dir, "users", "create", "alice", "--password-stdin", "--balance", "100", stdin=PASSWORD)
    flags = f"--default-model mini.en --threads 1 --balances --data-dir {data_dir}"
    server = start_server(models_dir, data_dir.parent / "server.log", flags)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def two_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of a tone: two tokens at the default price."""
    path = tmp_path_factory.mktemp("clip") / "two-seconds.wav"
    path.write_bytes(pcm_wav((0.1 * np.sin(np.arange(32_000) * 2 * np.pi * 440 / 16_000))[None], 16_000))
    return path


def test_signed_in_the_page_shows_the_balance_and_what_a_transcription_cost_and_sign_out_ends_the_session(
    browser: Chrome, balance_server: Server, data_dir: Path, console: list[dict], two_seconds: Path
) -> None:
    browser.get(f"{balance_server.base_url}/web/icon.svg")
    browser.execute_script("localStorage.clear()")
    browser.get(f"{balance_server.base_url}/")
    # A server with accounts refuses the first, anonymous load and offers a key or an account.
    wait(browser, lambda b: by_id(b, "key-dialog").is_displayed(), 10)
    by_id(browser, "key-sign-in").click()
    wait(browser, lambda b: b.switch_to.active_element.get_attribute("id") == "username", 5)
    browser.switch_to.active_element.send_keys("alice", Keys.TAB, PASSWORD)
    browser.save_screenshot(str(SCREENS / "sign-in.png"))
    browser.switch_to.active_element.send_keys(Keys.ENTER)

    wait(browser, lambda b: by_id(b, "who-balance").text == "· balance: 100 tokens", 10)
    assert by_id(browser, "who-name").text == "alice"
    assert not by_id(browser, "sign-in-button").is_displayed() and by_id(browser, "sign-out").is_displayed()

    choose_file(browser, two_seconds)
    by_id(browser, "transcribe").click()
    wait(browser, lambda b: by_id(b, "who-balance").text == "· balance: 98 tokens", 30)
    by_id(browser, "tab-usage").click()

    # Opening the tab fetches the usage again and redraws its rows: a cell read meanwhile may be gone.
    def first_row(b: Chrome) -> list[str]:
        return [cell.text for cell in b.find_elements(By.CSS_SELECTOR, "#usage-rows tr:first-child td")]

    wait(browser, lambda b: first_row(b)[1:] == ["Transcription", "mini.en", "2.0 s", "2"], 10)
    browser.save_screenshot(str(SCREENS / "account.png"))
    browser.set_window_size(390, 844)
    try:
        browser.save_screenshot(str(SCREENS / "account-phone.png"))
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        browser.set_window_size(1280, 900)

    # An exhausted balance: the request is refused with a message saying so, and nothing is charged.
    whisper_api(data_dir, "users", "set", "alice", "--balance", "1")
    by_id(browser, "tab-file").click()
    by_id(browser, "transcribe").click()
    wait(browser, lambda b: by_id(b, "notice").is_displayed(), 30)
    assert by_id(browser, "notice-text").text.startswith("Your balance does not cover this request")
    wait(browser, lambda b: by_id(b, "who-balance").text == "· balance: 1 token", 10)
    browser.save_screenshot(str(SCREENS / "account-402.png"))

    secret = browser.execute_script("return JSON.parse(localStorage.getItem('whisper-api.session')).secret")
    by_id(browser, "sign-out").click()
    # Signed out, the page starts afresh and asks again, as on the first visit; the session is over.
    wait(browser, lambda b: by_id(b, "key-dialog").is_displayed(), 10)
    assert by_id(browser, "transcript").text == ""
    assert by_id(browser, "sign-in-button").is_displayed() and not by_id(browser, "tab-usage").is_displayed()
    assert browser.execute_script("return localStorage.getItem('whisper-api.session')") is None
    refused = httpx.get(f"{balance_server.base_url}/v1/usage", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401
    # The refused requests are the two anonymous loads and the unpaid transcription: the browser logs
    # each as a failed load.
    console.extend(browser.get_log("browser"))
    failed = [entry for entry in console if "401" in entry["message"] or "402" in entry["message"]]
    assert sorted("/v1/models" in entry["message"] for entry in failed) == [False, True, True]
    for entry in failed:
        console.remove(entry)
