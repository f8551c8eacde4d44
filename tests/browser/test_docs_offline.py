"""The API's documentation pages work on a machine without internet: /docs (Swagger UI) and
/docs/redoc (ReDoc, also at /redoc) render in the headless browser of conftest.py, which can reach
nothing but 127.0.0.1, list every operation, log no error (conftest's `console`) and load nothing
from any other host. With the server's API key entered under "Authorize", Swagger's "Try it out"
uploads a file, transcribes with /v1/listen and submits a job, each form sent as Swagger fills it.

Screenshots go to /tmp/screens/docs-*.png for a person to look at.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import av
import httpx
import numpy as np
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import SCREENS
from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.support.spoken import spoken_clips

#: A short clip: what "Try it out" uploads.
SPEECH = spoken_clips()["en-2"].path


@pytest.fixture(scope="module")
def docs_server(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The small model trained here (it transcribes the clip in well under a second), with an API key
    so that "Authorize" matters."""
    directory = tmp_path_factory.mktemp("docs-server")
    (directory / trained_model.name).symlink_to(trained_model)
    running = start_server(
        directory,
        directory / "server.log",
        # Flash attention is slower for this model's heads (tests/e2e/conftest.py's trained_server).
        "--default-model tiny-synth --contexts 1 --threads 2 --no-flash-attn",
        {"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


def operation_count(server: Server) -> int:
    document = httpx.get(f"{server.base_url}/docs/openapi.json").json()
    return sum(len(operations) for operations in document["paths"].values())


def until(browser: Chrome, css: str, count: int = 1) -> list[WebElement]:
    """The elements `css` selects, once there are at least `count` of them (60 s bounds a failure)."""
    return WebDriverWait(browser, 60, poll_frequency=0.1).until(
        lambda b: elements if len(elements := b.find_elements(By.CSS_SELECTOR, css)) >= count else None
    )


def drawn(browser: Chrome, name: str) -> float:
    """The share of the visible page that is not its background colour; saved as docs-`name`.png."""
    png = browser.get_screenshot_as_png()
    (SCREENS / f"docs-{name}.png").write_bytes(png)
    with av.open(io.BytesIO(png), format="png_pipe") as container:
        pixels = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return float(1 - np.all(pixels == pixels[0, 0], axis=-1).mean())


def hosts_loaded(browser: Chrome) -> set[str]:
    """Every host the page loaded from: the document and each resource (scripts, styles, images,
    fonts, fetches) in the browser's own record of them."""
    urls = browser.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    return {urlsplit(url).hostname or urlsplit(url).scheme for url in urls}


def test_swagger_ui_lists_every_operation_offline(
    docs_server: Server, browser: Chrome, console: list[dict]
) -> None:
    browser.get(f"{docs_server.base_url}/docs")
    listed = until(browser, ".opblock-summary-path", operation_count(docs_server))
    paths = {element.get_attribute("data-path") for element in listed}
    assert {"/v1/audio/transcriptions", "/v1/listen", "/v1/files", "/v1/transcription-jobs"} <= paths
    assert browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").text == "Authorize"
    assert drawn(browser, "swagger") > 0.1
    assert hosts_loaded(browser) == {"127.0.0.1"}


def test_redoc_at_redoc_lists_every_operation_offline(
    docs_server: Server, browser: Chrome, console: list[dict]
) -> None:
    browser.get(f"{docs_server.base_url}/redoc")
    until(browser, "[data-section-id^='operation/']", operation_count(docs_server))
    assert browser.current_url == f"{docs_server.base_url}/docs/redoc"
    assert drawn(browser, "redoc") > 0.1
    assert hosts_loaded(browser) == {"127.0.0.1"}


def authorize(browser: Chrome, key: str) -> None:
    """Enter `key` for the bearer scheme (the first) in Swagger's Authorize dialog."""
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    bearer = until(browser, ".modal-ux .auth-container")[0]
    bearer.find_element(By.CSS_SELECTOR, "input").send_keys(key)
    bearer.find_element(By.CSS_SELECTOR, "button.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done").click()


def try_out(browser: Chrome, operation_id: str, upload: Path) -> WebElement:
    """Open an operation, press "Try it out" and choose `upload` as its file."""
    operation = browser.find_element(By.ID, f"operations-default-{operation_id}")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    until(browser, f"#operations-default-{operation_id} .try-out__btn")[0].click()
    operation.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(upload))
    return operation


def execute(browser: Chrome, operation: WebElement) -> tuple[int, str]:
    """Press Execute; the status the server answered, and the body as Swagger shows it."""
    operation.find_element(By.CSS_SELECTOR, ".execute").click()
    answer = f"#{operation.get_attribute('id')} .live-responses-table .response"
    status = until(browser, f"{answer} .response-col_status")[0].text
    return int(status), browser.find_element(By.CSS_SELECTOR, f"{answer} .response-col_description pre").text


@pytest.mark.parametrize(
    ("operation_id", "status"),
    # The job's form holds the transcription form's fields, so it also shows that Swagger sends none
    # of them with a value the server refuses (test_openapi_document.py checks every form's document).
    [("V1FilesUploadFiles", 200), ("V1ListenListen", 200), ("V1TranscriptionJobsCreateJob", 202)],
    ids=["files", "listen", "jobs"],
)
def test_try_it_out_sends_the_key_and_the_audio(
    docs_server: Server, browser: Chrome, console: list[dict], operation_id: str, status: int
) -> None:
    browser.get(f"{docs_server.base_url}/docs")
    until(browser, ".opblock-summary-path", operation_count(docs_server))
    authorize(browser, API_KEY)
    operation = try_out(browser, operation_id, SPEECH)
    answered, body = execute(browser, operation)
    assert answered == status, body
    answer = operation.find_element(By.CSS_SELECTOR, ".live-responses-table")
    browser.execute_script("arguments[0].scrollIntoView()", answer)
    drawn(browser, f"try-{operation_id}")
