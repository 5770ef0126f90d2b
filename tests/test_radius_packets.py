"""Packet encoding and decoding of sippy.Radius_client, against bytes FreeRADIUS 3.2.1 accepted.

The expected bytes below were sent to `freeradius -X` (config tests/radius/), which decoded them
as the comments say and answered; the integration tests re-check the same paths end to end.
"""

from __future__ import annotations

import struct

from pyrad import packet

from sippy.Radius_client import Radius_client
from sippy.RadiusConf import RadiusConf, RadiusServer
from tests.radius_util import top_dictionary

DICT = top_dictionary()
SECRET = b"sippy-test-secret"


def client() -> Radius_client:
    server = RadiusServer("127.0.0.1", 1812, SECRET)
    return Radius_client(RadiusConf(authservers=[server], acctservers=[server], dictionary=DICT))


def split_attributes(raw: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of each attribute of a raw packet, in wire order."""
    out, pos = [], 20
    assert struct.unpack("!H", raw[2:4])[0] == len(raw)
    while pos < len(raw):
        atype, alen = raw[pos], raw[pos + 1]
        out.append((atype, raw[pos + 2 : pos + alen]))
        pos += alen
    return out


def test_accounting_request_bytes_cisco_vsa_and_avpair() -> None:
    rc = client()
    attrs = rc.translate(
        [
            ("User-Name", "alice"),
            ("Acct-Status-Type", "Stop"),
            ("Acct-Session-Time", "5"),
            ("h323-remote-address", "192.0.2.1"),
            ("call-id", "abc@host"),
            ("h323-session-protocol", "sipv2"),
        ]
    )
    _, raw = rc.encode(packet.AccountingRequest, attrs, SECRET, 7)
    # FreeRADIUS: User-Name = "alice", Acct-Status-Type = Stop, Acct-Session-Time = 5,
    # h323-remote-address = "h323-remote-address=192.0.2.1", Cisco-AVPair = "call-id=abc@host",
    # Cisco-AVPair = "h323-session-protocol=sipv2"; request authenticator accepted.
    assert raw.hex() == (
        "04070087085732725712213b25b39c5cc7afad840107616c6963652806000000022e06000000051a2500000009"
        "171f683332332d72656d6f74652d616464726573733d3139322e302e322e311a1800000009011263616c6c2d69"
        "643d61626340686f73741a2300000009011d683332332d73657373696f6e2d70726f746f636f6c3d7369707632"
    )


def test_access_request_digest_sub_attributes_each_in_own_digest_attributes() -> None:
    rc = client()
    attrs = rc.translate(
        [
            ("User-Name", "alice"),
            ("Digest-Realm", "sip.test"),
            ("Digest-Nonce", "abc"),
            ("Digest-Method", "INVITE"),
            ("Digest-URI", "sip:200@x"),
            ("Digest-Algorithm", "MD5"),
            ("Digest-User-Name", "alice"),
            ("Digest-Response", "0" * 32),
        ]
    )
    pkt, raw = rc.encode(packet.AccessRequest, attrs, SECRET, 1)
    wire = split_attributes(raw)
    # FreeRADIUS rlm_digest: "Digest-Attributes look OK" -> Digest-Realm = "sip.test",
    # Digest-Nonce = "abc", Digest-Method = "INVITE", Digest-URI = "sip:200@x",
    # Digest-Algorithm = "MD5", Digest-User-Name = "alice".
    assert [v.hex() for t, v in wire if t == 207] == [
        "010a7369702e74657374",
        "0205616263",
        "0308494e56495445",
        "040b7369703a3230304078",
        "06054d4435",
        "0a07616c696365",
    ]
    assert (206, b"0" * 32) in wire
    assert (1, b"alice") in wire
    # Signed: a Message-Authenticator the server can verify.
    assert any(t == 80 for t, _ in wire)
    received = packet.AuthPacket(packet=raw, secret=SECRET, dict=DICT)
    assert received.verify_message_authenticator()


def test_user_password_is_hidden_and_recoverable_with_the_secret() -> None:
    rc = client()
    pkt, raw = rc.encode(packet.AccessRequest, rc.translate([("User-Password", "cisco")]), SECRET, 3)
    wire = dict(split_attributes(raw))
    assert b"cisco" not in wire[2]
    received = packet.AuthPacket(packet=raw, secret=SECRET, dict=DICT)
    assert received.PwDecrypt(received["User-Password"][0]) == "cisco"


def test_unknown_names_travel_in_cisco_avpair_and_long_values_are_cut() -> None:
    rc = client()
    attrs = rc.translate([("x-foo", "bar"), ("h323-ivr-out", "sip_ua:" + "U" * 400)])
    assert attrs[0] == ("Cisco-AVPair", "x-foo=bar")
    _, raw = rc.encode(packet.AccountingRequest, attrs, SECRET, 4)
    vsas = [v for t, v in split_attributes(raw) if t == 26]
    assert vsas[0] == b"\x00\x00\x00\x09\x01\x0bx-foo=bar"
    assert len(vsas[1]) == 4 + 2 + 247 and vsas[1][6:].startswith(b"h323-ivr-out=sip_ua:UUU")


def test_reply_decoding_strips_cisco_name_prefixes_keeps_order() -> None:
    rc = client()
    req, _ = rc.encode(packet.AccessRequest, [("User-Name", "127.0.0.2")], SECRET, 9)
    reply = req.CreateReply()
    reply.AddAttribute("Cisco-AVPair", "h323-ivr-in=Routing:200@127.0.0.1:5070")
    reply.AddAttribute("Cisco-AVPair", "h323-ivr-in=Routing:300@127.0.0.1")
    reply.AddAttribute("h323-credit-time", "h323-credit-time=30")
    reply.AddAttribute("Reply-Message", "a=b")
    decoded = rc.decode_attributes(req.CreateReply(packet=reply.ReplyPacket()))
    assert decoded == (
        ("h323-ivr-in", "Routing:200@127.0.0.1:5070"),
        ("h323-ivr-in", "Routing:300@127.0.0.1"),
        ("h323-credit-time", "30"),
        ("Reply-Message", "a=b"),
    )
