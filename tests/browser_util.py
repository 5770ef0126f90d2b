"""Headless Chromium with JsSIP for the browser tests (tests/test_wss_browser.py,
tests/test_webrtc_browser.py): where the browser and the bundle's sources are, the flags, the
page's site, and stopping Chromium with its helper processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.conftest import stop_process

BROWSER_DIR = Path(__file__).parent / "browser"
JSSIP = BROWSER_DIR / "node_modules" / "jssip" / "lib" / "JsSIP.js"
ESBUILD = BROWSER_DIR / "node_modules" / ".bin" / "esbuild"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--ignore-certificate-errors",
)
MISSING = CHROMIUM is None or not JSSIP.exists() or not ESBUILD.exists()
SKIP_REASON = "needs Debian chromium and `npm ci` in tests/browser (run_tests does both)"


def build_site(site: Path, page: str) -> Path:
    """site/ with tests/browser/<page> and JsSIP bundled for it (jssip.js, esbuild)."""
    site.mkdir(exist_ok=True)
    shutil.copy(BROWSER_DIR / page, site / page)
    subprocess.run(
        [
            str(ESBUILD),
            str(JSSIP),
            "--bundle",
            "--format=iife",
            "--global-name=JsSIP",
            f"--outfile={site / 'jssip.js'}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return site


def stop_group(proc: subprocess.Popen) -> None:
    """Stop proc, and the whole process group it leads if it has one (Chromium's helpers)."""
    if proc.poll() is None and os.getpgid(proc.pid) == proc.pid:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stop_process(proc)
