"""An RTPproxy without the WebRTC modules, for tests: a UDP relay in front of the real one that
renumbers the module ids of ``M<id>:<instance>`` subcommands to ids no module has, so the real
proxy answers as one without dtls_gw (4) and ice_lite (5) would (a parse error, nothing created).

    python -m tests.rtpp_no_modules LISTEN_PORT PROXY_HOST:PROXY_PORT

Prints "ready" once listening; runs until killed.
"""

from __future__ import annotations

import re
import selectors
import socket
import sys

_MODULE = re.compile(rb"&& *[Mm]([45]):")


def main() -> None:
    port = int(sys.argv[1])
    host, _, pport = sys.argv[2].rpartition(":")
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", port))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.connect((host, int(pport)))
    clients: dict[bytes, tuple[str, int]] = {}  # cookie -> who asked
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ)
    sel.register(back, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is front:
                data, src = front.recvfrom(65536)
                clients[data.split(b" ", 1)[0]] = src
                back.send(_MODULE.sub(lambda m: b"&& M" + str(int(m[1]) + 4).encode() + b":", data))
            else:
                data = back.recv(65536)
                src = clients.pop(data.split(b" ", 1)[0], None)
                if src is not None:
                    front.sendto(data, src)


if __name__ == "__main__":
    main()
