"""A Wss_server that echoes each message back on its connection, for the listener's tests.

    python -m tests.programs.wss_echo CERTFILE KEYFILE [key=value ...]

key=value sets a Wss_server_opts limit (max_message_size, max_connections_per_address,
handshake_timeout). Prints one line per event on stdout: `listening PORT`, `message NAME LEN`,
`closed NAME`; the message `raise` makes the callback raise. A certificate that cannot be used
prints `error: ...` and exits 2.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor

from sippy.Wss_server import Wss_server, Wss_server_opts, WssConfigError


def main(argv: list[str]) -> int:
    certfile, keyfile = argv[0], argv[1]
    limits = {
        k: float(v) if k == "handshake_timeout" else int(v) for k, v in (a.split("=") for a in argv[2:])
    }

    def data_cb(data: bytes, ra: Any, server: Wss_server, rtime: Any) -> None:
        print(f"message {ra.received} {len(data)}", flush=True)
        if data == b"raise":
            raise RuntimeError("the SIP layer failed")
        server.send_to(b"echo:" + data, (ra.received, ra.address[1]))

    def close_cb(ra: Any, server: Wss_server) -> None:
        print(f"closed {ra.received} {server.wss_stats.open}", flush=True)

    opts = Wss_server_opts(
        ("127.0.0.1", 0), data_cb, certfile=certfile, keyfile=keyfile, close_callback=close_cb, **limits
    )
    try:
        server = Wss_server({}, opts, reactor=reactor)
    except WssConfigError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    print(f"listening {server.uopts.laddress[1]}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
