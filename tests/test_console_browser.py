"""The web console in a real browser: Debian's chromium, headless, driven by selenium.

One broker and one browser session serve the whole module. Devices are real MQTT clients
(paho, through ``aws_iot_mock.testing``); the page is used as a person would (clicks, typing),
and every wait is on a DOM condition (``WebDriverWait``) or on what a device received, never a
sleep. Each page's screenshot is saved under ``build/console-screenshots/`` (git-ignored), the
test artifacts; two of them are in docs/ (docs/console.md).

Skipped, saying why, when chromium or chromedriver is not installed
(``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import base64
import json
import queue
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.testing import DeviceFiles, DeviceRefusedError, IotBrokerThread, paho_client
from tests.console_client import TIMEOUT, ConsoleHttp, bundle_device, received

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) is absent")

from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver import Chrome  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / "build" / "console-screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="the browser test needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(broker: IotBrokerThread, downloads: Path) -> Iterator[Chrome]:
    """One headless chromium for the module, on the console's page, its live channel open."""
    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        # As root (containers, CI) chromium's sandbox cannot start; the page is our own.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,860",
        "--lang=en-US",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    # The browser's console messages, read by the last test (no script error anywhere).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The given chromedriver: selenium's own driver download (Selenium Manager) is never run.
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as exc:  # pragma: no cover - an installed but broken browser
        pytest.fail(f"chromium did not start: {exc.msg}")
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(f"http://localhost:{broker.ports['api']}/console/")
        wait(driver).until(lambda d: d.find_element(By.ID, "live").text == "live")
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, timeout: float = TIMEOUT) -> WebDriverWait[WebDriver]:
    """A wait whose condition is tried again when the live page re-rendered what it held."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def element(driver: WebDriver, css: str) -> WebElement:
    """The element ``css`` finds, once it is in the page and shown."""

    def shown(d: WebDriver) -> WebElement | Literal[False]:
        return next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), False)

    return wait(driver).until(shown)


def open_page(driver: WebDriver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'nav button[data-page="{name}"]').click()
    element(driver, f"#page-{name}")


def type_into(driver: WebDriver, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def screenshot(driver: WebDriver, name: str) -> None:
    """Save the page as ``build/console-screenshots/NAME.png``, cut below its content."""
    height = driver.execute_script(
        "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
    )
    width = driver.execute_script("return document.documentElement.clientWidth")
    # Chrome DevTools Protocol, Page.captureScreenshot: a clip of the viewport, as PNG.
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 860), "scale": 1},
        },
    )
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def text_of(driver: WebDriver, css: str) -> Callable[[WebDriver], str | None]:
    """A wait condition: the text of the first shown element ``css`` finds (None if none)."""

    def condition(d: WebDriver) -> str | None:
        shown = [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        return shown[0].text if shown else None

    return condition


# -- overview and connections --------------------------------------------------------------------


def test_a_device_that_connects_appears_on_the_overview_and_connections_pages(
    broker: IotBrokerThread, browser: WebDriver
) -> None:
    open_page(browser, "overview")
    wait(browser).until(lambda d: d.find_element(By.ID, "ov-endpoint").text == broker.endpoint)
    device = broker.create_device("browser-lamp")
    client = paho_client(device)
    try:
        wait(browser).until(lambda d: int(d.find_element(By.ID, "ov-connected").text) >= 1)
        doors = element(browser, "#ov-doors tbody").text
        assert str(broker.ports["mqtt"]) in doors
        screenshot(browser, "overview")
        open_page(browser, "connections")
        # The thing attached to its certificate comes from the control plane.
        things = '#conn-table tr[data-client-id="browser-lamp"] td:nth-child(3)'
        wait(browser).until(lambda d: text_of(d, things)(d) == "browser-lamp")
        screenshot(browser, "connections")
    finally:
        client.disconnect()
        client.loop_stop()
    wait(browser).until(
        lambda d: (
            not d.find_elements(By.CSS_SELECTOR, '#conn-table tr[data-client-id="browser-lamp"]')
        )
    )


# -- MQTT test client ----------------------------------------------------------------------------


def test_a_message_published_from_the_test_client_reaches_the_device(
    broker: IotBrokerThread, browser: WebDriver
) -> None:
    device = broker.create_device("browser-sub")
    client = paho_client(device)
    try:
        inbox = received(client, "devices/browser-sub/in")
        open_page(browser, "mqtt")
        type_into(browser, "sub-filter", "devices/#")
        browser.find_element(By.ID, "sub-add").click()
        wait(browser).until(text_of(browser, "#sub-list li code"))
        type_into(browser, "pub-topic", "devices/browser-sub/in")
        type_into(browser, "pub-payload", '{"lamp": "on"}')
        browser.find_element(By.ID, "pub-send").click()
        message = inbox.get(timeout=TIMEOUT)
        assert (message.topic, json.loads(message.payload)) == (
            "devices/browser-sub/in",
            {"lamp": "on"},
        )
        # The page's own subscription shows it too (its stream reconnected with the filter).
        shown = element(browser, '#msg-list li[data-topic="devices/browser-sub/in"] pre')
        assert json.loads(shown.text) == {"lamp": "on"}
        assert element(browser, "#pub-result").text == "Published to devices/browser-sub/in"
        screenshot(browser, "mqtt-test-client")
    finally:
        client.disconnect()
        client.loop_stop()


# -- log -----------------------------------------------------------------------------------------


def unregistered_device(broker: IotBrokerThread, directory: Path) -> DeviceFiles:
    """A certificate the broker's CA signed but nobody registered: AWS refuses it."""
    issued = pki.issue_device_certificate(CertsDirectory(broker.config.certs_dir).ensure_root_ca())
    assert issued.private_key_pem is not None
    write_public_file(directory / "stranger.cert.pem", issued.certificate_pem)
    write_private_key(directory / "stranger.private.key", issued.private_key_pem)
    return DeviceFiles(
        client_id="browser-stranger",
        cert_path=directory / "stranger.cert.pem",
        key_path=directory / "stranger.private.key",
        root_ca_path=broker.root_ca_path,
        certificate_id=issued.certificate_id,
        certificate_arn="",
        thing_name="browser-stranger",
        policy_name="",
        endpoint=broker.endpoint,
        port=broker.port,
    )


def test_a_refused_device_appears_in_the_log_with_its_reason_explained(
    broker: IotBrokerThread, browser: WebDriver, tmp_path: Path
) -> None:
    open_page(browser, "log")
    type_into(browser, "log-client", "")
    Select(browser.find_element(By.ID, "log-status")).select_by_visible_text("Failure")
    browser.find_element(By.CSS_SELECTOR, "#log-filters button[type=submit]").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "live").text == "live")
    stranger = unregistered_device(broker, tmp_path)
    with pytest.raises(DeviceRefusedError):
        paho_client(stranger)
    reason = "CERTIFICATE_NOT_REGISTERED"
    # Pushed to the page as the broker logs it (server-sent events), no reload, no polling.
    row = element(browser, f'#log-table tr[data-reason="{reason}"]')
    record = broker.wait_for_refusal(reason)
    assert record["principalId"] == stranger.certificate_id
    catalogue = ConsoleHttp(broker.ports["api"]).get("/console/api/reasons")["reasons"]
    assert row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text == "Failure"
    assert catalogue[reason]["meaning"] in row.find_element(By.CSS_SELECTOR, ".explanation").text
    screenshot(browser, "log")
    # Back to every status, for the pages after this one.
    Select(browser.find_element(By.ID, "log-status")).select_by_visible_text("any")
    browser.find_element(By.CSS_SELECTOR, "#log-filters button[type=submit]").click()


# -- shadows -------------------------------------------------------------------------------------


def test_a_desired_state_edited_on_the_shadows_page_sends_the_delta_to_the_device(
    broker: IotBrokerThread, browser: WebDriver
) -> None:
    device = broker.create_device("browser-shadow")
    client = paho_client(device)
    try:
        deltas = received(client, "$aws/things/browser-shadow/shadow/update/delta")
        open_page(browser, "shadows")
        type_into(browser, "shadow-thing", "browser-shadow")
        browser.find_element(By.ID, "shadow-load").click()
        wait(browser).until(
            lambda d: (
                d.find_element(By.ID, "shadow-title").text == "Classic shadow"
                and "404" in d.find_element(By.ID, "shadow-document").text
            )
        )
        type_into(browser, "shadow-desired", '{"color": "blue"}')
        browser.find_element(By.ID, "shadow-update").click()
        delta = json.loads(deltas.get(timeout=TIMEOUT).payload)
        assert delta["state"] == {"color": "blue"}
        live = element(browser, '#shadow-events li[data-topic$="/update/delta"] pre')
        assert json.loads(live.text)["state"] == {"color": "blue"}
        wait(browser).until(
            lambda d: '"version": 1' in d.find_element(By.ID, "shadow-document").text
        )
        screenshot(browser, "shadows")
    finally:
        client.disconnect()
        client.loop_stop()


# -- registry ------------------------------------------------------------------------------------


def certificate_row(browser: WebDriver, certificate_id: str) -> WebElement:
    return element(browser, f'#reg-cert-table tr[data-certificate-id="{certificate_id}"]')


def set_status(browser: WebDriver, certificate_id: str, status: str) -> None:
    row = certificate_row(browser, certificate_id)
    Select(row.find_element(By.TAG_NAME, "select")).select_by_visible_text(status)
    row.find_element(By.TAG_NAME, "button").click()
    element(
        browser, f'#reg-cert-table tr[data-certificate-id="{certificate_id}"] td.status-{status}'
    )


def test_a_certificate_status_changed_on_the_registry_page_takes_effect(
    broker: IotBrokerThread, browser: WebDriver
) -> None:
    device = broker.create_device("browser-cert")
    connected = paho_client(device)
    gone: queue.Queue[object] = queue.Queue()
    connected.on_disconnect = lambda *args: gone.put(args)
    open_page(browser, "registry")
    browser.find_element(By.CSS_SELECTOR, '[data-registry="things"]').click()
    element(browser, '#reg-thing-table tr[data-thing="browser-cert"]').click()
    wait(browser).until(
        lambda d: device.certificate_arn in d.find_element(By.ID, "reg-thing-detail").text
    )
    screenshot(browser, "registry-things")
    browser.find_element(By.CSS_SELECTOR, '[data-registry="certificates"]').click()
    set_status(browser, device.certificate_id, "INACTIVE")
    assert "is now INACTIVE" in element(browser, "#reg-cert-status-result").text
    # As AWS does after UpdateCertificate, the connected device is disconnected...
    gone.get(timeout=TIMEOUT)
    connected.loop_stop()
    closed = broker.wait_for_refusal("CERTIFICATE_STATUS_CHANGED", "browser-cert")
    assert closed["principalId"] == device.certificate_id
    # ... and its next connection is refused.
    with pytest.raises(DeviceRefusedError) as refused:
        paho_client(device)
    assert any(r.get("reason") == "CERTIFICATE_NOT_ACTIVE" for r in refused.value.refusals)
    screenshot(browser, "registry-certificates")
    # The passing twin: active again, the device connects.
    set_status(browser, device.certificate_id, "ACTIVE")
    client = paho_client(device)
    client.disconnect()
    client.loop_stop()


def test_a_certificate_created_on_the_registry_page_downloads_a_bundle_that_connects(
    broker: IotBrokerThread, browser: WebDriver, downloads: Path, tmp_path: Path
) -> None:
    template = broker.create_device("browser-bundle")
    open_page(browser, "registry")
    browser.find_element(By.CSS_SELECTOR, '[data-registry="certificates"]').click()
    type_into(browser, "reg-cert-thing", "browser-bundle")
    type_into(browser, "reg-cert-policy", template.policy_name)
    browser.find_element(By.ID, "reg-cert-create").click()
    name = element(browser, "#reg-cert-bundle").text
    assert name.endswith("-device-bundle.zip")
    # The browser wrote it to its downloads directory (a partial file has another suffix).
    bundle = downloads / name
    wait(browser).until(lambda _d: bundle.is_file())
    device = bundle_device(bundle.read_bytes(), tmp_path, "browser-bundle", broker)
    certificate_row(browser, device.certificate_id)
    client = paho_client(device)
    client.disconnect()
    client.loop_stop()


def test_a_policy_document_and_test_authorization_on_the_registry_page(
    broker: IotBrokerThread, browser: WebDriver
) -> None:
    device = broker.create_device("browser-authz")
    open_page(browser, "registry")
    browser.find_element(By.CSS_SELECTOR, '[data-registry="policies"]').click()
    element(browser, f'#reg-policy-table tr[data-policy="{device.policy_name}"]').click()
    wait(browser).until(
        lambda d: "iot:Connect" in d.find_element(By.ID, "reg-policy-document").text
    )
    prefix = f"arn:aws:iot:{broker.config.region}:{broker.config.account_id}"
    type_into(browser, "reg-auth-principal", device.certificate_id)
    type_into(browser, "reg-auth-client", "browser-authz")
    Select(browser.find_element(By.ID, "reg-auth-action")).select_by_visible_text("PUBLISH")
    type_into(browser, "reg-auth-resources", f"{prefix}:topic/devices/browser-authz/telemetry")
    type_into(browser, "reg-auth-add", "")
    browser.find_element(By.ID, "reg-auth-test").click()
    verdict = element(browser, "#reg-auth-result [data-verdict]")
    assert verdict.text == "ALLOWED"
    assert device.policy_name in element(browser, "#reg-auth-result").text
    screenshot(browser, "registry-policies")
    # The denied twin: another device's topic.
    type_into(browser, "reg-auth-resources", f"{prefix}:topic/devices/someone-else/telemetry")
    browser.find_element(By.ID, "reg-auth-test").click()
    wait(browser).until(text_of(browser, '#reg-auth-result [data-verdict="IMPLICIT_DENY"]'))


def test_every_page_was_seen_without_a_script_error(browser: Chrome) -> None:
    """The browser's console: no script error and no refused request in the whole session."""
    # Chrome.get_log("browser"), which is untyped: the same command.
    entries: list[dict[str, Any]] = browser.execute("getLog", {"type": "browser"})["value"]
    errors = [entry for entry in entries if entry["level"] == "SEVERE"]
    assert errors == []
