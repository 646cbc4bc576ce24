#!/usr/bin/env python3
"""Regenerate the README's screenshots: Prometheus scraping the demo exporter.

Starts `python -m exporter --demo` and a throwaway Prometheus (2 s scrape interval, the
rules of prometheus/alerts.yml and prometheus/recording.yml) on free loopback ports,
lets them collect data for a while, then photographs Prometheus's web UI with headless
Chromium:

    docs/images/prometheus-status-graph.png  notebooks per status, stacked graph
    docs/images/prometheus-queue-table.png   queued notebooks: wait time, name, user
    docs/images/prometheus-alerts.png        the alerts page, firing alerts expanded

    venv/bin/python scripts/screenshots.py                    # about two minutes
    venv/bin/python scripts/screenshots.py --data-seconds 30  # quicker, less graph

Run it with a Python that has the exporter's dependencies (or name one with --python).
Needs /usr/bin/prometheus (Prometheus 2.x, classic UI as Debian ships it) and chromium
(`apt-get install --no-install-recommends chromium`); Pillow, when installed, trims the
pictures and shrinks them to a 256-colour palette. Every process it starts is stopped at
the end, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support, shared with the tests and bench/

from tests.support.processes import free_port  # noqa: E402

OUT = ROOT / "docs" / "images"
JOB = "modelarts-demo"

# Notebooks per status (statuses with none left out, to keep the legend short).
STATUS_EXPR = "sum by (status) (modelarts_notebook_instances) > 0"
# Queued notebooks, longest wait first, with their name, user and flavor.
QUEUE_EXPR = (
    "sort_desc(round(\n"
    "    modelarts_notebook_instance_queue_wait_seconds\n"
    "  * on (project_id, id) group_left (name, user_name, flavor)\n"
    "    modelarts_notebook_instance_info\n"
    "))"
)


def log(message: str) -> None:
    print(f"screenshots: {message}", file=sys.stderr, flush=True)


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
    """Call `check` until it returns something true; give up after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError, KeyError):
            result = check()
            if result:
                return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(interval)


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    result: list[dict[str, Any]] = json.loads(http_get(url))["data"]["result"]
    return result


# -- processes ------------------------------------------------------------------------------


class Processes:
    """Processes started here, each in its own process group; `stop()` ends them all."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        out.close()
        self.running.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for _, proc in reversed(self.running):
            _stop_group(proc)
        self.running.clear()


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group `proc` leads, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # Children of a process that already exited (Chromium's helpers) may still be around.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


def prometheus_config(exporter: str) -> str:
    rules = [str(ROOT / "prometheus" / name) for name in ("alerts.yml", "recording.yml")]
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": rules,
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [exporter]}]}],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


# -- Chromium -------------------------------------------------------------------------------


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(
        "screenshots: no chromium found; apt-get install --no-install-recommends chromium"
    )


def chromium_argv(binary: str, profile: Path, width: int, height: int) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ]


class DevTools:
    """A minimal Chrome DevTools Protocol client over one WebSocket (text frames only)."""

    def __init__(self, ws_url: str, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(ws_url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.sock = socket.create_connection(address, timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    def close(self) -> None:
        self.sock.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message = json.dumps({"id": self.next_id, "method": method, "params": params})
        self._send(message.encode())
        while True:  # skip events until our answer arrives
            answer = json.loads(self._receive())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def _send(self, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x81, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _receive(self) -> bytes:
        message = b""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8))
            payload = self._read(size)  # the server never masks
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x1, 0x2, 0x0):
                message += payload
                if first & 0x80:
                    return message


@contextlib.contextmanager
def devtools_page(binary: str, width: int, height: int) -> Iterator[DevTools]:
    """A headless Chromium with one blank page, driven over the DevTools protocol."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="screenshots-chromium-") as profile:
        argv = chromium_argv(binary, Path(profile), width, height)
        argv += [f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank"]
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:

            def page_ws() -> str | None:
                if proc.poll() is not None:
                    raise RuntimeError(f"chromium exited with {proc.returncode}")
                targets = json.loads(http_get(f"http://127.0.0.1:{port}/json/list"))
                pages = [t for t in targets if t.get("type") == "page"]
                return str(pages[0]["webSocketDebuggerUrl"]) if pages else None

            tools = DevTools(wait_until("chromium's DevTools", page_ws, timeout=30))
            try:
                tools.call("Page.enable")
                tools.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield tools
            finally:
                tools.close()
        finally:
            _stop_group(proc)


# -- pictures -------------------------------------------------------------------------------

# Page scripts, run in the page once it has loaded.
GRAPH_READY = """
  document.querySelector('.graph_area svg path') !== null
  && document.querySelectorAll('.legend li').length > 0
  && jQuery('.spinner:visible').length === 0
"""
TABLE_READY = """
  document.querySelectorAll('.console_table tbody tr td').length > 1
  && jQuery('.spinner:visible').length === 0
"""
ALERTS_READY = "document.getElementById('alertsTable') !== null"
# Grow the expression box to show a multi-line query whole; take the focus off it.
FIT_EXPRESSION = """
  for (const box of document.querySelectorAll('textarea.expression_input')) {
    box.style.height = 'auto';
    box.style.height = (box.scrollHeight + box.offsetHeight - box.clientHeight) + 'px';
    box.blur();
  }
"""
# Expand the firing alerts (the red rows) to list them with their labels; leave the
# rules' definitions (they are in prometheus/alerts.yml) out, to keep every rule in sight.
# Group headings name the rule file by its path in the repository, not on this machine.
EXPAND_FIRING = """
  jQuery('tr.alert_header.alert-danger').click();
  jQuery('tr.alert_details pre').hide();
  jQuery('#alertsTable > tbody > tr > td').each(function () {
    const text = this.textContent.trim();
    if (text.startsWith(ROOT)) { this.textContent = text.slice(ROOT.length); }
  });
"""


@dataclass(frozen=True)
class Picture:
    name: str
    url: str
    ready: str  # JavaScript, true once the page shows its data
    prepare: str = ""  # JavaScript run before the picture is taken
    max_height: int = 1600


def graph_url(
    prom: str, expr: str, *, tab: int, range_input: str = "5m", stacked: bool = False
) -> str:
    """A link to the classic Prometheus 2.x graph page (tab 0: graph, tab 1: table)."""
    params = {"g0.expr": expr, "g0.tab": str(tab), "g0.range_input": range_input}
    if stacked:
        params["g0.stacked"] = "1"
    return f"{prom}/classic/graph?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def shoot(tools: DevTools, picture: Picture, out: Path, width: int) -> None:
    """Open the picture's page, wait for its data, save the page (down to max_height)."""
    tools.evaluate("window.screenshotsOldPage = true")  # gone once the new page is in
    tools.call("Page.navigate", url=picture.url)
    loaded = "!window.screenshotsOldPage && document.readyState === 'complete'"
    wait_until(f"{picture.name}: page", lambda: tools.evaluate(loaded), timeout=30)
    wait_until(f"{picture.name}: data", lambda: tools.evaluate(picture.ready), timeout=30)
    if picture.prepare:
        tools.evaluate(picture.prepare)
    time.sleep(1)  # let the page lay itself out again
    height = int(tools.evaluate("document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, picture.max_height), "scale": 1}
    shot = tools.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
    out.write_bytes(base64.b64decode(shot["data"]))


def finish(path: Path) -> None:
    """Trim the blank margin below the content and store a 256-colour PNG (needs Pillow)."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        log(f"Pillow not installed: {path.name} left as Chromium saved it")
        return
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((rgb.width - 1, rgb.height - 1)))
    box = ImageChops.difference(rgb, background).getbbox()
    if box:
        rgb = rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + 16)))
    small = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-seconds", type=int, default=90, help="seconds of data to collect (default 90)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="directory of the pictures")
    parser.add_argument("--prometheus", default="/usr/bin/prometheus", help="binary")
    parser.add_argument(
        "--python", default=sys.executable, help="Python with the exporter's dependencies"
    )
    parser.add_argument("--width", type=int, default=1400, help="browser width in pixels")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    binary = chromium_binary()
    probe = [args.python, "-c", "import exporter.cli"]
    if subprocess.run(probe, cwd=ROOT, capture_output=True, check=False).returncode != 0:
        raise SystemExit(
            f"screenshots: {args.python} cannot import the exporter; run this script with"
            " the project's Python (e.g. venv/bin/python scripts/screenshots.py) or --python"
        )
    args.out.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    procs = Processes(work)

    def ready(url: str) -> bytes:
        procs.check_alive()  # raises at once when a process died
        return http_get(url)

    try:
        exporter_port, prom_port = free_port(), free_port()
        exporter = f"127.0.0.1:{exporter_port}"
        prom = f"http://127.0.0.1:{prom_port}"

        # A short cache TTL so the graph moves with the simulated fleet every few seconds.
        procs.start(
            "exporter",
            [
                args.python,
                "-m",
                "exporter",
                "--demo",
                "--cache-ttl=5",
                f"--web.listen-address={exporter}",
            ],
        )
        wait_until("the exporter", lambda: ready(f"http://{exporter}/-/ready"), timeout=30)
        log(f"exporter ready on {exporter}")

        config = work / "prometheus.yml"
        config.write_text(prometheus_config(exporter))
        procs.start(
            "prometheus",
            [
                args.prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
        )
        wait_until("Prometheus", lambda: ready(f"{prom}/-/ready"), timeout=60)
        log(f"Prometheus ready on {prom}")

        wait_until("the first scrape", lambda: query(prom, f'up{{job="{JOB}"}} == 1'), timeout=30)
        started = time.monotonic()
        log(f"collecting {args.data_seconds}s of data")
        while time.monotonic() - started < args.data_seconds:
            procs.check_alive()
            time.sleep(2)
        firing = wait_until(
            "a firing alert", lambda: query(prom, 'ALERTS{alertstate="firing"}'), timeout=30
        )
        log("firing: " + ", ".join(sorted({a["metric"]["alertname"] for a in firing})))
        wait_until("queued notebooks", lambda: query(prom, QUEUE_EXPR), timeout=30)

        pictures = [
            Picture(
                "prometheus-status-graph.png",
                graph_url(
                    prom, STATUS_EXPR, tab=0, range_input=f"{args.data_seconds}s", stacked=True
                ),
                GRAPH_READY,
                FIT_EXPRESSION,
            ),
            Picture(
                "prometheus-queue-table.png",
                graph_url(prom, QUEUE_EXPR, tab=1),
                TABLE_READY,
                FIT_EXPRESSION,
            ),
            Picture(
                "prometheus-alerts.png",
                f"{prom}/classic/alerts",
                ALERTS_READY,
                f"{{ const ROOT = {json.dumps(str(ROOT) + os.sep)};{EXPAND_FIRING}}}",
                max_height=2400,
            ),
        ]
        with devtools_page(binary, args.width, 800) as tools:
            for picture in pictures:
                path = args.out / picture.name
                log(f"{picture.name} <- {picture.url}")
                shoot(tools, picture, path, args.width)
                finish(path)
                log(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
        return 0
    except (RuntimeError, TimeoutError, ConnectionError) as error:
        log(str(error))
        for name, _ in procs.running:
            log(f"last lines of {name}:\n{procs.tail(name)}")
        return 1
    finally:
        procs.stop()
        if args.keep_logs:
            log(f"temporary files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
