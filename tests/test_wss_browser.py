"""A real browser through the WSS socket: JsSIP (npm `jssip`, installed into tests/browser by
run_tests and bundled here with esbuild) in headless Chromium calls a SIPp UAS through b2bua_radius;
the call must reach `confirmed` and end with the callee's BYE. The page (tests/browser/call.html) is
served from loopback and its events are read over the DevTools protocol."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.browser_util import CHROMIUM, CHROMIUM_FLAGS, MISSING, SKIP_REASON, build_site, stop_group
from tests.conftest import free_tcp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_ops import B2bua, read_text
from tests.wss_util import make_cert

pytestmark = pytest.mark.skipif(MISSING, reason=SKIP_REASON)


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)


def _page_events(devtools_port: int) -> list[str]:
    """window.events of the test page, through the DevTools protocol (Runtime.evaluate)."""
    from websockets.sync.client import connect

    pages = [
        t for t in _get_json(f"http://127.0.0.1:{devtools_port}/json/list") if "call.html" in t.get("url", "")
    ]
    if not pages:
        return []
    with connect(pages[0]["webSocketDebuggerUrl"], open_timeout=5, max_size=None) as cdp:
        cdp.send(
            json.dumps(
                {
                    "id": 1,
                    "method": "Runtime.evaluate",
                    "params": {"expression": "JSON.stringify(window.events || [])", "returnByValue": True},
                }
            )
        )
        while True:
            reply = json.loads(cdp.recv(timeout=5))
            if reply.get("id") == 1:
                value = reply.get("result", {}).get("result", {}).get("value")
                return json.loads(value) if value else []


def test_jssip_in_chromium_calls_through_wss(tmp_path):
    site = build_site(tmp_path / "site", "call.html")
    certfile, keyfile = make_cert(tmp_path)
    procs: list[subprocess.Popen] = []
    uas = Sipp("webrtc_uas.xml", None, timeout=30.0)
    b2b = None
    try:
        uas.start()
        wss_port = free_tcp_port()
        b2b = B2bua(
            tmp_path, uas.local_port, extra=(f"--wss_socket=127.0.0.1:{wss_port}:{certfile}:{keyfile}",)
        )
        b2b.start()
        http_port, devtools_port = free_tcp_port(), free_tcp_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(http_port),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(site),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{http_port}/call.html?wss={wss_port}&sip={b2b.port}&cld=1234"
        procs.append(
            subprocess.Popen(
                [
                    CHROMIUM,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={tmp_path / 'profile'}",
                    f"--remote-debugging-port={devtools_port}",
                    "about:blank",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its helper processes too are killed at the end
            )
        )
        deadline = time.monotonic() + 30
        while True:  # DevTools up: open the page in a new tab
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{devtools_port}/json/new?{urllib.parse.quote(url, safe='')}",
                    method="PUT",
                )
                urllib.request.urlopen(req, timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Chromium's DevTools port never answered"
                time.sleep(0.2)
        events: list[str] = []
        while time.monotonic() < deadline:
            events = _page_events(devtools_port)
            if any(e.startswith(("ended", "failed", "error")) for e in events):
                break
            time.sleep(0.2)
        if "confirmed" not in events:
            uas.kill()
            pytest.fail(f"{events}\n{uas.wait().describe()}\n{read_text(b2b.log)}")
        assert events[-1] == "ended:remote/Terminated", events
        res = uas.wait()
        assert res.returncode == 0, res.describe()
    finally:
        for p in procs:
            stop_group(p)
        if b2b is not None:
            b2b.kill()
        uas.cleanup()
