"""A headless Chromium driven over the DevTools protocol, for tests of what a person sees.

Debian's chromium (``ops/chromium install``), a fresh profile per browser, the flags this
machine's closed network needs, and a few verbs: open a page, type into fields, click,
read the visible text, list cookies, take a screenshot. aiohttp speaks the protocol's
WebSocket; nothing else is needed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

__all__ = ["Browser", "chromium_path"]

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=420,900",  # a phone's width: the pages must read there
)


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page."""

    def __init__(self) -> None:
        self._profile = Path(tempfile.mkdtemp(prefix="rgsync-chromium-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next = 0

    async def __aenter__(self) -> Browser:
        path = chromium_path()
        if path is None:
            raise RuntimeError("no chromium: run ops/chromium install")
        self._proc = subprocess.Popen(
            [path, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        marker = self._profile / "DevToolsActivePort"
        for _ in range(300):
            if marker.exists() and marker.read_text().count("\n") >= 1:
                break
            await asyncio.sleep(0.1)
        port = marker.read_text().split()[0]
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json") as response:
            targets = await response.json()
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.command("Page.enable")
        await self.command("Network.enable")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        assert self._ws is not None
        self._next += 1
        await self._ws.send_json({"id": self._next, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), 30)
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (for reading and clicking)."""
        result = await self.command(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return (result.get("result") or {}).get("value")

    async def open(self, url: str) -> str:
        """Go to ``url``, wait until the page has loaded; return the visible text."""
        await self.command("Page.navigate", url=url)
        return await self.settle()

    async def settle(self) -> str:
        """Wait for the current navigation to finish; return the visible text."""
        for _ in range(100):
            await asyncio.sleep(0.1)
            if await self.evaluate("document.readyState") == "complete":
                break
        return await self.text()

    async def text(self) -> str:
        """What a person reads on the page."""
        return str(await self.evaluate("document.body ? document.body.innerText : ''") or "")

    async def fill(self, selector: str, value: str) -> None:
        """Type ``value`` into the field ``selector`` names."""
        found = await self.evaluate(
            f"(e => e ? (e.value = {json.dumps(value)}, true) : false)"
            f"(document.querySelector({json.dumps(selector)}))"
        )
        assert found, f"no field {selector}"

    async def click(self, selector: str) -> str:
        """Click what ``selector`` names (a button); return the next page's visible text."""
        found = await self.evaluate(
            f"(e => e ? (e.click(), true) : false)(document.querySelector({json.dumps(selector)}))"
        )
        assert found, f"nothing to click at {selector}"
        await asyncio.sleep(0.3)
        return await self.settle()

    async def url(self) -> str:
        """The page's address now."""
        return str(await self.evaluate("location.href"))

    async def cookies(self) -> list[dict[str, Any]]:
        """The browser's cookies, with their flags."""
        return list((await self.command("Network.getAllCookies")).get("cookies") or [])

    async def screenshot(self, path: Path) -> None:
        """Save a PNG of the page (for a person to look at after a failure)."""
        shot = await self.command(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True
        )
        path.write_bytes(base64.b64decode(shot["data"]))
