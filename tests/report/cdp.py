"""A small Chrome DevTools Protocol client for the report tests: headless Chromium over aiohttp.

`Chromium` starts Debian's `chromium` headless with `--remote-debugging-port=0` and reads the
port from `DevToolsActivePort` in its profile directory. `load_page` opens a new tab (a flat
CDP session), enables Runtime, Log, Network and Page, navigates to a URL and records what a
person's browser would complain about: console errors, uncaught exceptions, error log entries
(CSP violations land there), dialogs (an `alert` from an injected script) and every request
the page makes. It can then evaluate JavaScript, hover the mouse and take a full-page
screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def find_chromium() -> str | None:
    """The Chromium binary: `$NIMBUS_CHROMIUM`, else `chromium` (Debian) or a usual alias."""
    configured = os.environ.get("NIMBUS_CHROMIUM")
    if configured:
        return shutil.which(configured) or (configured if Path(configured).is_file() else None)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(Exception):
    """A DevTools command that answered with an error, or a browser that did not start."""


class Chromium:
    """A headless Chromium process (its own process group) with a DevTools endpoint."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile
        self.process: subprocess.Popen[bytes] | None = None
        self.ws_url = ""
        self.log_path = profile.parent / "chromium.log"

    def start(self, timeout_s: float = 30.0) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    *CHROMIUM_FLAGS,
                    "--remote-debugging-port=0",
                    f"--user-data-dir={self.profile}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CdpError(
                    f"chromium exited with {self.process.returncode}: {self._log_tail()}"
                )
            with contextlib.suppress(OSError):
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    self.ws_url = f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
                    return self
            time.sleep(0.05)
        self.stop()
        raise CdpError(
            f"chromium wrote no DevToolsActivePort in {timeout_s:g}s: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        # The browser's helpers share its process group (start_new_session): end that group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@dataclass
class PageReport:
    """What a page did while it loaded (and while the test poked it)."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def foreign_requests(self) -> list[str]:
        """Requests for anything but the page's own file and `data:` URLs."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]

    @property
    def errors(self) -> list[str]:
        return [*self.console_errors, *self.exceptions, *self.log_errors, *self.dialogs]


class _Connection:
    """One DevTools websocket: commands by id, events collected in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.dismissals: set[asyncio.Task[dict[str, Any]]] = set()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            self.events.append(data)
            if data.get("method") == "Page.javascriptDialogOpening":
                # An open dialog blocks the page's script: dismiss it (it is recorded as an error).
                self.dismissals.add(
                    asyncio.get_running_loop().create_task(
                        self.send(
                            "Page.handleJavaScriptDialog",
                            {"accept": False},
                            session=data.get("sessionId"),
                        )
                    )
                )
            for method, future in list(self.waiters):
                if data.get("method") == method and not future.done():
                    future.set_result(data)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(CdpError("the DevTools connection closed"))

    def wait_for(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((method, future))
        return future

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout_s: float = 20.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, timeout_s)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result


def _console_text(params: dict[str, Any]) -> str:
    parts = []
    for arg in params.get("args", []):
        parts.append(str(arg.get("value", arg.get("description", arg.get("type", "")))))
    return " ".join(parts)


class Page:
    """A tab attached by a flat session; `report` fills in as events arrive."""

    def __init__(self, connection: _Connection, session: str, report: PageReport) -> None:
        self.connection = connection
        self.session = session
        self.report = report

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.connection.send(method, params, session=self.session)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(f"evaluate failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def settle(self) -> None:
        """Two animation frames and a short pause: late errors and layout have happened."""
        await self.evaluate(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame("
            "() => setTimeout(r, 100))))"
        )

    async def hover(self, x: float, y: float) -> None:
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    async def fit(self, width: int = 1280) -> None:
        """Make the viewport as tall as the page, so all of it is on screen (and hoverable)."""
        height = int(await self.evaluate("document.documentElement.scrollHeight"))
        if await self.evaluate(f"window.innerWidth === {width} && window.innerHeight === {height}"):
            return  # already fitted: a resize would move the mouse out of a hovered element
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        await self.settle()

    async def screenshot(self, path: Path, width: int = 1280) -> Path:
        """A full-page PNG at `width` CSS pixels."""
        await self.fit(width)
        shot = await self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def collect(self) -> None:
        """Sort this session's events into the report."""
        report = self.report
        for event in self.connection.events:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = f"console.{params.get('type')}: {_console_text(params)}"
                if params.get("type") in {"error", "assert"}:
                    report.console_errors.append(text)
                elif params.get("type") == "warning":
                    report.warnings.append(text)
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                description = details.get("exception", {}).get("description", "")
                report.exceptions.append(f"{details.get('text', '')} {description}".strip())
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                text = f"{entry.get('source')}: {entry.get('text')} ({entry.get('url', '')})"
                if entry.get("level") == "error":
                    report.log_errors.append(text)
                elif entry.get("level") == "warning":
                    report.warnings.append(text)
            elif method == "Network.requestWillBeSent":
                report.requests.append(params.get("request", {}).get("url", ""))
            elif method == "Page.javascriptDialogOpening":
                report.dialogs.append(f"dialog {params.get('type')}: {params.get('message')}")
        self.connection.events = [
            e for e in self.connection.events if e.get("sessionId") != self.session
        ]


@contextlib.asynccontextmanager
async def open_page(ws_url: str, url: str, *, width: int = 1280, height: int = 900) -> Any:
    """Open `url` in a new tab with Runtime, Log, Network and Page enabled; yield the `Page`."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url, max_msg_size=0, autoping=True) as ws,
    ):
        connection = _Connection(ws)
        target = await connection.send("Target.createTarget", {"url": "about:blank"})
        attached = await connection.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(connection, attached["sessionId"], PageReport(url))
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                await page.send(f"{domain}.enable")
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            loaded = connection.wait_for("Page.loadEventFired")
            navigated = await page.send("Page.navigate", {"url": url})
            if navigated.get("errorText"):
                raise CdpError(f"navigation to {url} failed: {navigated['errorText']}")
            await asyncio.wait_for(loaded, 20)
            await page.settle()
            yield page
        finally:
            page.collect()
            with contextlib.suppress(Exception):
                await connection.send("Target.closeTarget", {"targetId": target["targetId"]})
            connection.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connection.reader
