"""What `TAUTAN_CLIENT_HINTS=critical` costs a visitor: the first visit of a Chromium
browser to the short domain, with `off`, `ask` and `critical`, in a real headless Chromium
(Debian's, /usr/bin/chromium) against a real `tautan serve`, over an emulated mobile link.

    .venv/bin/python -m bench.client_hints_bench                 # 10 rounds, 100 ms latency
    .venv/bin/python -m bench.client_hints_bench --rounds 2      # a quick check

Each round opens a new browser context (a first visit: no hints remembered) per mode, in
turn (A B C A B C …), and times the navigation from the short link to the landing page's
load. The server's redirect counter says how many requests each visit made.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

KEY = "tk_client_hints_bench_0123456789abcdef"
MODES = ("off", "ask", "critical")
REDUCED_UA = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
A54 = {
    "brands": [{"brand": "Chromium", "version": "131"}],
    "fullVersion": "131.0.6778.135",
    "platform": "Android",
    "platformVersion": "14.0.0",
    "architecture": "",
    "model": "SM-A546E",
    "mobile": True,
}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP shop.example 127.0.0.1"]  # fmt: skip


class Landing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Shop</title>ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(mode: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TAUTAN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{mode}.db",
        "TAUTAN_SPOOL_DIR": str(tmp / f"spool-{mode}"),
        "TAUTAN_ADMIN_KEY": KEY,
        "TAUTAN_BASE_URL": base,
        "TAUTAN_CLIENT_HINTS": mode,
    }
    tautan = str(Path(sys.executable).parent / "tautan")
    process = subprocess.Popen(
        [tautan, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"tautan serve ({mode}) did not start")


def redirects(base: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("tautan_redirects_total "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=100, help="emulated round trip")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    landing = ThreadingHTTPServer(("127.0.0.1", 0), Landing)
    threading.Thread(target=landing.serve_forever, daemon=True).start()
    shop = f"http://shop.example:{landing.server_address[1]}/"
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for mode in MODES:
                servers[mode] = serve(mode, Path(tmp))
                base = servers[mode][1]
                httpx.post(
                    f"{base}/api/links",
                    json={"url": shop, "slug": "go"},
                    headers={"Authorization": f"Bearer {KEY}"},
                ).raise_for_status()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                for _ in range(args.rounds):
                    for mode in MODES:
                        context = browser.new_context(is_mobile=True)
                        page = context.new_page()
                        cdp = context.new_cdp_session(page)
                        cdp.send("Network.enable")
                        cdp.send(
                            "Network.emulateNetworkConditions",
                            {"offline": False, "latency": args.latency_ms,
                             "downloadThroughput": -1, "uploadThroughput": -1},
                        )  # fmt: skip
                        cdp.send(
                            "Network.setUserAgentOverride",
                            {"userAgent": REDUCED_UA, "userAgentMetadata": A54},
                        )
                        started = time.perf_counter()
                        page.goto(f"{servers[mode][1]}/go", wait_until="load")
                        times[mode].append(time.perf_counter() - started)
                        context.close()
                browser.close()
            print(f"First visit, short link -> landing page loaded ({args.rounds} rounds, "
                  f"emulated latency {args.latency_ms:.0f} ms per request):")  # fmt: skip
            baseline = statistics.median(times["off"])
            for mode in MODES:
                median = statistics.median(times[mode])
                requests = redirects(servers[mode][1]) / args.rounds
                print(f"  {mode:9} median {median * 1000:7.1f} ms  ({median / baseline:.2f}x off)"
                      f"  {requests:.1f} requests to the short link per visit")  # fmt: skip
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)
            landing.shutdown()


if __name__ == "__main__":
    main()
