"""Browser tests of the web console: a real service on 127.0.0.1 (its own thread and event loop, a fresh
database per test) driven by Debian's headless Chromium through Selenium and chromedriver.

Skipped, with the reason, when CLEANGATE_BROWSER_TESTS=0, when selenium is not installed, or when
/usr/bin/chromium or /usr/bin/chromedriver is missing (scripts/test installs them where it can)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gate_service.config import Settings

CHROMIUM = os.environ.get("CLEANGATE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CLEANGATE_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _skip_reason() -> str | None:
    if os.environ.get("CLEANGATE_BROWSER_TESTS", "1") == "0":
        return "browser tests disabled (CLEANGATE_BROWSER_TESTS=0)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} not found: apt-get install {package} (scripts/test does it when run as root)"
    return None


SKIP = _skip_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIP is None:
        return
    here = Path(__file__).resolve().parent
    for item in items:
        # Only the tests that need the browser: the plain HTTP checks of the pages still run.
        if Path(str(item.fspath)).resolve().parent == here and {"browser", "page"} & set(
                getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason=SKIP))


class LiveServer:
    """create_app() served by aiohttp on a random port of 127.0.0.1, in a thread with its own event loop,
    so that the (blocking) browser driver and the service never wait on each other."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-live-server", daemon=True)
        self.app: Any = None
        self.runner: Any = None
        self.url = ""

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        from aiohttp import web

        from gate_service.app import create_app

        self.thread.start()

        async def up() -> int:
            self.app = create_app(self.settings)
            self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.url = f"http://127.0.0.1:{self.run(up(), 120)}"

    def stop(self) -> None:
        if self.runner is not None:
            self.run(self.runner.cleanup(), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def token(self, role: str, **kw: Any) -> str:
        from gate_service import auth, keys

        async def make() -> str:
            _, secret = await auth.create_token(self.app[keys.POOL], role, name=f"browser-{role}", **kw)
            return secret

        return self.run(make())

    def call(self, method: str, path: str, token: str, body: Any = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        """A plain HTTP call from the test (setup and checks), answering (status, JSON or bytes)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + urllib.parse.quote(path, safe="/?=&:+-_.~%"), data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in ctype else raw


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    # No rate limits: a browser test is one user clicking quickly, not what the limits are for.
    fields = {f.name for f in dataclasses.fields(settings)}
    if "rate_limits" in fields:
        settings = dataclasses.replace(settings, rate_limits="off")
    server = LiveServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def downloads() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cg-downloads-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(downloads: Path) -> Iterator[Any]:
    """One headless Chromium for the session (each test's server has its own origin, so its own session)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cg-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # Offline machine: no first-run, sync, component updates or QUIC probes that would stall start-up.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps",
                "--no-default-browser-check", "--window-size=1400,1000", "--lang=zh-CN", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "intl.accept_languages": "zh-CN,zh",
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    # Chinese UI locale: date pickers and number formats as a guard in Linfen sees them.
    env = {**os.environ, "LANGUAGE": "zh_CN:zh", "TZ": "Asia/Shanghai"}
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=opts)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """Small helpers over the driver: waits that fail with the page's visible error text."""

    def __init__(self, driver: Any, base: str) -> None:
        self.d = driver
        self.base = base

    def open(self, path: str, token: str | None = None) -> None:
        self.d.get(self.base + path)
        if token:
            if self.d.execute_script("return sessionStorage.length"):
                self.d.execute_script("sessionStorage.clear()")  # another role's token from an earlier page
                self.d.get(self.base + path)
            self.type("#token-input", token)
            self.click("#login-btn")
            self.wait(lambda: self.d.find_element("css selector", "body.logged-in"), what="login")

    def q(self, css: str) -> Any:
        return self.d.find_element("css selector", css)

    def qa(self, css: str) -> list[Any]:
        return self.d.find_elements("css selector", css)

    def type(self, css: str, text: str, clear: bool = True) -> None:
        el = self.q(css)
        if clear:
            el.clear()
        el.send_keys(text)

    def set(self, css: str, value: str) -> None:
        """Set an input's value by script (date/datetime-local inputs are awkward to type into headless)."""
        self.d.execute_script(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1];"
            "e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));",
            css, value)

    def select(self, css: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.q(css)).select_by_value(value)

    def click(self, css: str) -> None:
        el = self.q(css)
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
        el.click()

    def errors(self) -> str:
        return " | ".join(e.text for e in self.qa(".error") if e.is_displayed())

    def wait(self, cond: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = cond()
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001 - element not there yet
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; page errors: {self.errors() or 'none'}; last: {last}")

    def text(self, css: str) -> str:
        return self.q(css).text

    def wait_text(self, css: str, needle: str, timeout: float = 30) -> str:
        return self.wait(lambda: needle in self.text(css) and self.text(css), timeout, f"{needle!r} in {css}")

    def screenshot(self, name: str) -> Path:
        """The whole page, beyond the window (Chromium's own full-page capture)."""
        import base64

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        size = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Page]:
    yield Page(browser, live.url)
    # Leave the page first: its open WebSockets would otherwise hold up the server's shutdown.
    browser.get("about:blank")
