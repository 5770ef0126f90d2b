"""A browser's call with two-way audio through the WebRTC gateway: JsSIP in headless Chromium ->
WSS -> b2bua_radius -r -> a UDP callee with plain RTP that echoes what it gets, media through the
real RTPproxy's ice_lite and dtls_gw modules (tests/webrtc_e2e.py runs one browser and its calls).

Each call asserts: confirmed; >= 100 RTP packets from the browser at the callee, decrypted (PCMU:
160-byte payloads, no SRTP tag); >= 100 inbound RTP packets in the browser's getStats(); BYE from
the browser reaches the callee, BYE from the callee ends the call in the page; `l` shows a WebRTC
caller; no session left on the proxy. With re-INVITEs: hold and resume from the browser, then
from the callee, then an ICE restart from the browser, media both ways again after each. PCMU,
Opus and PCMA, each hang-up direction; once in the host's network namespace, once in a fresh one
with only loopback (``unshare -n``, root), where every browser candidate is a loopback one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_util import MISSING, SKIP_REASON, build_site
from tests.webrtc_e2e import PACKETS

ROOT = Path(__file__).parent.parent
REINVITE_STEPS = [
    "media",
    "hold",
    "unhold",
    "media",
    "callee-hold",
    "callee-unhold",
    "media",
    "restart",
    "media",
]

pytestmark = pytest.mark.skipif(MISSING, reason=SKIP_REASON)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("webrtc-site"), "webrtc.html")


def run(site: Path, calls: str, *, netns: bool) -> dict:
    cmd = [sys.executable, "-m", "tests.webrtc_e2e", "--site", str(site), "--calls", calls]
    if netns:
        # A new network namespace: only lo, brought up by the driver; Chromium must be told it may
        # use it (it leaves loopback out of ICE otherwise).
        cmd = ["unshare", "-n", *cmd, "--lo-up", "--allow-loopback"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "error" not in out, f"{out['error']}\n{out.get('calls')}\n{out.get('b2bua_log')}"
    return out


def check_call(call: dict, log: str) -> None:
    why = f"{json.dumps({k: v for k, v in call.items() if k != 'listing'}, indent=1)}\n{log}"
    events = call["events"]
    assert "confirmed" in events, why
    assert call["inbound"] >= PACKETS, why
    from_browser = sum(call["callee_rtp"].values())
    assert from_browser >= PACKETS, why
    if call["codec"] in ("pcmu", "pcma"):
        # Plain RTP: payload type 0 or 8 with exactly 160 bytes (20 ms of G.711), no 10-byte SRTP tag.
        pt = "0" if call["codec"] == "pcmu" else "8"
        assert call["callee_rtp"].get(pt, 0) == from_browser and call["g711_160"] == from_browser, why
        assert " RTP/AVP " in call["offer"] and "a=fingerprint" not in call["offer"], why
    else:
        (opus_pt,) = [
            line[9:].split()[0] for line in call["offer"].splitlines() if "opus/48000" in line.lower()
        ]
        assert call["callee_rtp"].get(opus_pt, 0) == from_browser, why
    if call.get("reinvite"):
        # Hold and resume from each side: every step done, and after each resume another 100
        # packets each way.
        assert [m[0] for m in call["marks"]] == REINVITE_STEPS, why
        for state in ("hold:local", "unhold:local", "hold:remote", "unhold:remote"):
            assert state in events, why
        # The browser's ICE credentials: the same until the restart, new after it.
        ufrags = [m[-1] for m in call["marks"]]
        cut = REINVITE_STEPS.index("restart")
        before, after = set(ufrags[:cut]), set(ufrags[cut:])
        assert len(before) == 1 and len(after) == 1 and before != after, why
    assert ", WebRTC caller" in call["listing"] and "via RTPproxy" in call["listing"], call["listing"]
    if call["hangup"] == "browser":
        assert call["callee_got_bye"] and events[-1] == "ended:local/Terminated", why
    else:
        assert call["callee_bye_answered"] and events[-1] == "ended:remote/Terminated", why


def test_browser_calls_a_sip_phone_with_two_way_audio(site: Path) -> None:
    out = run(
        site, "pcmu:browser:reinvite,pcmu:callee,opus:browser,opus:callee:reinvite,pcma:browser", netns=False
    )
    assert [(c["codec"], c["hangup"], c["reinvite"]) for c in out["calls"]] == [
        ("pcmu", "browser", True),
        ("pcmu", "callee", False),
        ("opus", "browser", False),
        ("opus", "callee", True),
        ("pcma", "browser", False),
    ]
    for call in out["calls"]:
        check_call(call, out["b2bua_log"])
    assert out["proxy_sessions_after"] == 0


def _can_unshare() -> bool:
    """Whether this process may make a network namespace (root, and a kernel/container that lets it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="unshare -n: needs root where network namespaces are allowed")
def test_in_a_loopback_only_network_namespace(site: Path) -> None:
    out = run(site, "pcmu:callee,opus:browser", netns=True)
    for call in out["calls"]:
        check_call(call, out["b2bua_log"])
        addresses = {e.split()[4] for e in call["events"] if e.startswith("candidate:")}
        assert addresses and addresses <= {"127.0.0.1", "::1"}, call["events"]
    assert out["proxy_sessions_after"] == 0
