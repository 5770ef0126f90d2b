"""RFC 4475 (SIP torture tests), sections 3.1.1, 3.1.2 and the parser-related parts of 3.3, one
test per message. The messages are written here after the RFC's descriptions; each goes through a
transaction manager (fake transport, Clock) and the test checks what crossed the wire."""

from __future__ import annotations

from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from tests.sip_torture import Run, accepted, dropped, msg, refused, sdp
from tests.test_transactions import PEER

# ---------------------------------------------------------------------------------------------
# 3.1.1 Valid messages: accepted and processed.


def test_3_1_1_1_short_tortuous_invite() -> None:
    body = sdp("192.0.2.2")
    data = msg(
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
        "TO :",
        " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
        "  ;",
        "  tag = 98asjd8",
        "MaX-fOrWaRdS: 0068",
        "Call-ID: wsinv.ndaksdj@192.0.2.1",
        f"Content-Length   : {len(body)}",
        "cseq: 0009",
        "  INVITE",
        "Via  : SIP  /   2.0",
        " /UDP",
        "    192.0.2.2;branch=390skdjuw",
        "s :",
        "NewFangledHeader:   newfangled value",
        " continued newfangled value",
        "UnknownHeaderWithUnusualValue: ;;,,;;,;",
        "Content-Type: application/sdp",
        "Route:",
        " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
        "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
        "  branch  =   z9hG4bK9ikj8  ,",
        " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
        " z9hG4bK30239",
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
        "      newvalue ;",
        "  secondparam ; q = 0.33",
        body=body,
    )
    req, resp = accepted(data)
    assert req.getHFBody("to").getTag() == "1918181833n"
    assert req.getHFBody("from").getTag() == "98asjd8"
    assert req.getHFBody("max-forwards").getNum() == 68
    assert req.getHFBody("cseq").getCSeq() == (9, "INVITE")
    assert len(req.getHFs("via")) == 3
    assert req.getHFBody("contact").getUrl().username == "jdrosen"
    assert str(req.getBody()) == body.decode()
    # In-dialog (To tag) INVITE for no dialog of ours: 481, with the To tag we were given.
    assert resp.getSCodeNum() == 481
    assert resp.getHFBody("to").getTag() == "1918181833n"


def test_3_1_1_2_wide_range_of_valid_characters() -> None:
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    data = msg(
        f"{method} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com SIP/2.0",
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
        'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" '
        "<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
        "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
        '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439";tag=_token~1\'+`*%!-.',
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
        f"CSeq: 139122385 {method}",
        "Max-Forwards: 255",
        "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb",
        "Content-Length: 0",
    )
    req, resp = accepted(data)
    assert req.getMethod() == method
    assert req.getHFBody("cseq").getCSeqNum() == 139122385
    # Unknown method: 501 and what we do support (RFC 3261 8.2.1).
    assert resp.getSCodeNum() == 501
    assert "INVITE" in str(resp.getHFBody("allow"))


def test_3_1_1_3_valid_use_of_escapes() -> None:
    data = msg(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
        "To: sip:%75se%72@example.com",
        "From: <sip:I%20have%20spaces@example.net>;tag=938",
        "Max-Forwards: 87",
        "i: esc01.239409asdfakjkn23onasd0-3234",
        "CSeq: 234234 INVITE",
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
        "C: application/sdp",
        "Contact:",
        "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
        f"Content-Length: {len(sdp())}",
        body=sdp(),
    )
    req, resp = accepted(data)
    assert req.getRURI().username == "sips:user@example.com"
    assert req.getHFBody("to").getUrl().username == "user"
    assert req.getHFBody("from").getUrl().username == "I have spaces"
    assert req.getHFBody("contact").getUrl().username == "caller"
    assert resp.getSCodeNum() == 486


def test_3_1_1_4_escaped_nulls_in_uris() -> None:
    data = msg(
        "REGISTER sip:example.com SIP/2.0",
        "To: sip:null-%00-null@example.com",
        "From: sip:null-%00-null@example.com;tag=839923423",
        "Max-Forwards: 70",
        "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
        "CSeq: 14398234 REGISTER",
        "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
        "Contact: <sip:%00@host5.example.com>",
        "Contact: <sip:%00%00@host5.example.com>",
        "L:0",
    )
    req, resp = accepted(data)
    assert req.getHFBody("to").getUrl().username == "null-\x00-null"
    assert [c.getUrl().username for c in req.getHFBodys("contact")] == ["\x00", "\x00\x00"]
    assert resp.getSCodeNum() == 501


def test_3_1_1_5_percent_not_an_escape() -> None:
    data = msg(
        "RE%47IST%45R sip:registrar.example.com SIP/2.0",
        'To: "%Z%45" <sip:resource@example.com>',
        'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23',
        "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
        "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234",
        "CSeq: 29344 RE%47IST%45R",
        "Max-Forwards: 70",
        "Contact: <sip:alias1@host1.example.com>",
        "C%6Fntact: <sip:alias2@host2.example.com>",
        "Contact: <sip:alias3@host3.example.com>",
        "l: 0",
    )
    req, resp = accepted(data)
    # Not REGISTER: an unknown method whose name happens to hold percent signs.
    assert req.getMethod() == "RE%47IST%45R"
    assert req.getHFBody("to").getUri().name == "%Z%45"
    assert len(req.getHFs("contact")) == 2
    assert resp.getSCodeNum() == 501


def test_3_1_1_6_no_lws_between_display_name_and_laquot() -> None:
    data = msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:user@example.com",
        "From: caller<sip:caller@example.com>;tag=323",
        "Max-Forwards: 70",
        "Call-ID: lwsdisp.1234abcd@funky.example.com",
        "CSeq: 60 OPTIONS",
        "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw",
        "l: 0",
    )
    req, resp = accepted(data)
    assert req.getHFBody("from").getUri().name == "caller"
    assert req.getHFBody("from").getTag() == "323"
    assert resp.getSCodeNum() == 200


def test_3_1_1_7_long_values_in_header_fields() -> None:
    vias = [f"Via: SIP/2.0/TCP sip{n}.example.com" for n in range(33, 0, -1)]
    spellings = ["Via", "v", "V", "Via", "ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA"]
    spellings += ["V ", "v ", "V  ", "v  "]
    for i, name in enumerate(spellings):
        vias[i] = vias[i].replace("Via", name, 1)
    data = msg(
        "INVITE sip:user@example.com SIP/2.0",
        f'To: "I have a user name of {"extreme" * 10} proportion"<sip:user@example.com:6000;'
        f"unknownparam1=very{'long' * 20}value;longparam{'name' * 25}=shortvalue;"
        f"very{'long' * 25}ParameterNameWithNoValue>",
        f"F: sip:{'amazinglylongcallername' * 5}@example.net;tag=12{'982' * 50}424;unknownheaderparam"
        f"{'name' * 20}=unknowheaderparam{'value' * 15};unknownValueless{'paramname' * 10}",
        f"Call-ID: longreq.one{'really' * 20}longcallid",
        "CSeq: 3882340 INVITE",
        f"Unknown-{'Long' * 20}-Name:unknown-{'long' * 20}-value;unknown-{'long' * 20}-parameter-name ="
        f"unknown-{'long' * 20}-parameter-value",
        # The top Via is ours to answer: the rest are the 33 proxies of the RFC's message.
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK" + "long" * 50,
        *vias,
        "Max-Forwards: 70",
        f"Contact: <sip:{'amazinglylongcallername' * 5}@host5.example.net>",
        "Content-Type: application/sdp",
        f"l: {len(sdp())}",
        body=sdp(),
    )
    req, resp = accepted(data)
    assert len(req.getHFs("via")) == 34
    assert str(req.getHFBody("call-id")) == f"longreq.one{'really' * 20}longcallid"
    assert resp.getSCodeNum() == 486 and len(resp.getHFs("via")) == 34


def test_3_1_1_8_extra_trailing_octets_in_a_datagram() -> None:
    register = msg(
        "REGISTER sip:example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:j.user@example.com;tag=43251j3j324",
        "Max-Forwards: 8",
        "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        "Contact: sip:j.user@host.example.com",
        "CSeq: 8 REGISTER",
        "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492",
        "Content-Length: 0",
    )
    invite = msg(
        "INVITE sip:joe@example.com SIP/2.0",
        "t: sip:joe@example.com",
        "From: sip:caller@example.net;tag=141334",
        "Max-Forwards: 8",
        "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15",
        "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234",
        "Content-Type: application/sdp",
        f"Content-Length: {len(sdp())}",
        body=sdp(),
    )
    req, resp = accepted(register + invite)
    # Only the REGISTER is processed; the octets after its body are not a second message.
    assert req.getMethod() == "REGISTER" and req.getBody() is None
    assert resp.getSCodeNum() == 501


def test_3_1_1_9_semicolon_separated_parameters_in_uri_user_part() -> None:
    data = msg(
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
        "To: sip:j_user@example.com",
        "From: sip:caller@example.org;tag=33242",
        "Max-Forwards: 3",
        "Call-ID: semiuri.0ha0isndaksdj",
        "CSeq: 8 OPTIONS",
        "Accept: application/sdp, application/pkcs7-mime,",
        "        multipart/mixed, multipart/signed,",
        "        message/sip, message/sipfrag",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw",
        "l: 0",
    )
    req, resp = accepted(data)
    assert req.getRURI().username == "user"
    assert req.getRURI().userparams == ["par=u%40example.net"]
    assert req.getRURI().host == "example.com"
    assert resp.getSCodeNum() == 200


def test_3_1_1_10_varied_and_unknown_transport_types() -> None:
    data = msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:user@example.com",
        "From: <sip:caller@example.com>;tag=323",
        "Max-Forwards: 70",
        "Call-ID: transports.kijh4akdnaqjkwendsasfdj",
        "Accept: application/sdp",
        "CSeq: 60 OPTIONS",
        "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
        "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
        "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj",
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
        "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee",
        "l: 0",
    )
    req, resp = accepted(data)
    assert [v.getAddr()[0] for v in req.getHFBodys("via")] == [f"t{n}.example.com" for n in range(1, 6)]
    assert resp.getSCodeNum() == 200 and len(resp.getHFs("via")) == 5


def test_3_1_1_11_multipart_body_with_binary_part_passes_through() -> None:
    binary = bytes(range(256)) + b"\r\n--boundary42 in the middle\r\n" + bytes(range(255, -1, -1))
    body = (
        b"--boundary42\r\nContent-Type: application/sdp\r\n\r\n"
        + sdp()
        + b"\r\n--boundary42\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        b"Content-Transfer-Encoding: binary\r\nContent-Disposition: attachment; handling=required\r\n\r\n"
        + binary
        + b"\r\n--boundary42--\r\n"
    )
    data = msg(
        "INVITE sip:kumiko@example.org SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK75A4D9D",
        "Max-Forwards: 70",
        "From: <sip:tomoyo@example.net>;tag=1",
        "To: <sip:kumiko@example.org>",
        "Call-ID: mpart01.3as2j34k3j4@192.0.2.1",
        "CSeq: 1 INVITE",
        "Contact: <sip:tomoyo@192.0.2.1>",
        'Content-Type: multipart/signed;protocol="application/pkcs7-signature";'
        "micalg=sha1;boundary=boundary42",
        f"Content-Length: {len(body)}",
        body=body,
    )
    r = Run()
    seen = []

    def answer(req, t):  # type: ignore[no-untyped-def]
        seen.append(req)
        # Echo the body back, as a UA passing it on would.
        return (req.genResponse(488, "Not Acceptable Here", body=req.getBody()), None, None)

    r.tm.req_cb = answer
    resp = r.feed(data)
    assert len(seen) == 1 and resp is not None and not r.tm.bad_counts
    out = r.ft.sent[-1][0]
    assert out.endswith(body)
    assert f"Content-Length: {len(body)}\r\n".encode() in out
    assert seen[0].getBody().getType().startswith("multipart/signed")


def test_3_1_1_12_unusual_reason_phrase() -> None:
    r = Run()
    resp = SipResponse(
        buf=msg(
            "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f"
            "\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440"
            "\u043e\u0441\u0442\u043e\u0435",
            "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
            "Call-ID: unreason.1234ksdfak3j2erwedfsASdf",
            "CSeq: 35 INVITE",
            "From: sip:user@example.com;tag=11141343",
            "To: sip:user@example.edu;tag=2229",
            f"Content-Length: {len(sdp())}",
            "Content-Type: application/sdp",
            "Contact: <sip:user@host198.example.com>",
            body=sdp(),
        )
    )
    assert resp.getSCodeNum() == 200 and resp.getSCodeReason().startswith("= 2**3 * 5**2 ")
    # No transaction of ours: ignored quietly, not counted as bad.
    r.feed(str(resp).encode())
    assert r.ft.sent == [] and not r.tm.bad_counts and r.no_traceback()


def test_3_1_1_13_empty_reason_phrase() -> None:
    resp = SipResponse(
        buf=msg(
            "SIP/2.0 100 ",
            "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
            "Call-ID: noreason.asndj203insdf99223ndf",
            "CSeq: 35 INVITE",
            "From: <sip:user@example.com>;tag=39ansfi3",
            "To: <sip:user@example.edu>;tag=902jndnke3",
            "Content-Length: 0",
            "Contact: <sip:user@host105.example.com>",
        )
    )
    assert resp.getSCode() == (100, "")


# ---------------------------------------------------------------------------------------------
# 3.1.2 Invalid messages: refused with the right answer, nothing kept.


def invite(*headers: str, ruri: str = "sip:user@example.com", start: str = "", body: bytes = b"") -> bytes:
    base = {
        "To": "sip:j.user@example.com",
        "From": "sip:caller@example.net;tag=134161461246",
        "Max-Forwards": "7",
        "Call-ID": "torture.0ha0isndaksdjasdf3234nas",
        "CSeq": "8 INVITE",
        "Via": "SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw",
        "Contact": "<sip:caller@host15.example.net>",
        "Content-Type": "application/sdp",
        "Content-Length": str(len(body)),
    }
    for h in headers:
        name, _, value = h.partition(":")
        base[name] = value.strip()
    lines = [start or f"INVITE {ruri} SIP/2.0"]
    lines += [f"{k}: {v}" for k, v in base.items() if v != "-"]
    return msg(*lines, body=body)


def test_3_1_2_1_extraneous_header_field_separators() -> None:
    # Only the top Via's parameters are broken: the 400 goes where the datagram came from (as
    # rport would have it), with the Vias as they came.
    contact = 'Contact: "Joe" <sip:joe@example.org>;;;;'
    r = Run()
    resp = r.feed(invite("Via: SIP/2.0/UDP 192.0.2.15;;,;,,", contact))
    assert resp is not None and resp.getSL() == "SIP/2.0 400 Bad Via Header"
    assert r.ft.sent[0][1] == PEER
    assert resp.getHFs("via")[0].getValue().startswith("SIP/2.0/UDP 192.0.2.15;;")
    assert r.tables_empty() and r.no_traceback() and r.tm.bad_counts == {"bad_via": 1}
    # With no sent-by to read there is nothing to go by: dropped.
    dropped(invite("Via: SIP/2.0/UDP ;;,;,,"), "bad_via")
    # The same Contact under a good Via: read only by whoever needs it, answered 400 then.
    r = Run()
    r.tm.nat_traversal = True
    resp = r.feed(invite(contact))
    assert resp.getSCode() == (400, "Bad Contact Header") and r.tables_empty()


def test_3_1_2_2_content_length_larger_than_message() -> None:
    refused(invite("Content-Length: 9999", body=sdp()), 400, "Body Shorter Than Content-Length")


def test_3_1_2_3_negative_content_length() -> None:
    refused(invite("Content-Length: -999", body=sdp()), 400, "Bad Content-Length")


def test_3_1_2_4_request_scalar_fields_with_overlarge_values() -> None:
    data = msg(
        "REGISTER sip:example.com SIP/2.0",
        "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
        "To: <sip:user@example.com>",
        "From: <sip:user@example.com>;tag=239232jh3",
        "CSeq: 36893488147419103232 REGISTER",
        "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
        "Max-Forwards: 300",
        "Expires: 1" + "0" * 100,
        "Contact: <sip:user@host129.example.com>;expires=280297596632815",
        "Content-Length: 0",
    )
    resp = refused(data, 400, "Bad CSeq Header")
    # Copied back as received: the client matches its answer with it.
    assert resp.getHFs("cseq")[0].getValue() == "36893488147419103232 REGISTER"
    refused(data.replace(b"36893488147419103232", b"1"), 400, "Bad Max-Forwards Header")


def test_3_1_2_5_response_scalar_fields_with_overlarge_values() -> None:
    dropped(
        msg(
            "SIP/2.0 503 Service Unavailable",
            "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129",
            "To: <sip:user@example.com>",
            "From: <sip:other@example.net>;tag=2easdjfejw",
            "CSeq: 9292394834772304023312 OPTIONS",
            "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r",
            "Retry-After: 949302838503028349304023988",
            'Warning: 1812 overture "In Progress"',
            "Content-Length: 0",
        ),
        "bad_response",
    )


def test_3_1_2_6_unterminated_quoted_string_in_display_name() -> None:
    refused(invite('To: "Mr. J. User <sip:j.user@example.com>'), 400, "Bad To Header")


def test_3_1_2_7_request_uri_in_angle_brackets() -> None:
    refused(invite(ruri="<sip:user@example.com>"), 400, "Bad Request-URI")


def test_3_1_2_8_request_uri_with_embedded_lws() -> None:
    refused(invite(start="INVITE sip:user@example.com; lr SIP/2.0"), 400, "Bad Request-Line")


def test_3_1_2_9_multiple_sp_in_request_line_accepted_liberally() -> None:
    # The RFC allows either; we are liberal (and never write such a line ourselves).
    req, resp = accepted(invite(start="INVITE  sip:user@example.com  SIP/2.0"))
    assert req.getSL() == "INVITE sip:user@example.com SIP/2.0"


def test_3_1_2_10_sp_at_end_of_request_line_accepted_liberally() -> None:
    req, resp = accepted(
        msg(
            "OPTIONS sip:remote-target@example.com SIP/2.0  ",
            "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK299342093",
            "To: <sip:remote-target@example.com>",
            "From: <sip:local-resource@example.com>;tag=329429089",
            "Call-ID: trws.oicu34958239neffasdhr2345r",
            "Accept: application/sdp",
            "CSeq: 238923 OPTIONS",
            "Max-Forwards: 70",
            "Content-Length: 0",
        )
    )
    assert resp.getSCodeNum() == 200


def test_3_1_2_11_escaped_headers_in_request_uri() -> None:
    refused(invite(ruri="sip:user@example.com?Route=%3Csip:example.com%3E"), 400, "Bad Request-URI")


def test_3_1_2_12_invalid_time_zone_in_date_accepted() -> None:
    req, resp = accepted(invite("Date: Fri, 01 Jan 2010 16:00:00 EST", body=sdp()))
    assert resp.getSCodeNum() == 486


def test_3_1_2_13_contact_uri_with_headers_not_in_angle_brackets() -> None:
    r = Run()
    resp = r.feed(
        msg(
            "REGISTER sip:example.com SIP/2.0",
            "To: sip:user@example.com",
            "From: sip:user@example.com;tag=998332",
            "Max-Forwards: 70",
            "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1",
            "CSeq: 1 REGISTER",
            "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw",
            "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "l: 0",
        )
    )
    # We are no registrar: the Contact is never read, the REGISTER gets 501 (not a 2xx).
    assert resp is not None and resp.getSCodeNum() == 501 and r.tables_empty() is False


def test_3_1_2_14_spaces_within_addr_spec() -> None:
    refused(invite('To: "Watson, Thomas" < sip:t.watson@example.org >'), 400, "Bad To Header")


def test_3_1_2_15_non_token_characters_in_display_name() -> None:
    refused(invite("From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43"), 400, "Bad From Header")


def test_3_1_2_16_unknown_protocol_version() -> None:
    refused(invite("CSeq: 8 OPTIONS", start="OPTIONS sip:t.watson@example.org SIP/7.0"), 505)


def test_3_1_2_17_start_line_and_cseq_method_mismatch() -> None:
    data = invite("CSeq: 8 INVITE", start="OPTIONS sip:user@example.com SIP/2.0")
    refused(data, 400, "CSeq Method Mismatch")


def test_3_1_2_18_unknown_method_with_cseq_method_mismatch() -> None:
    refused(invite(start="NEWMETHOD sip:user@example.com SIP/2.0"), 400, "CSeq Method Mismatch")


def test_3_1_2_19_overlarge_response_code() -> None:
    dropped(
        msg(
            "SIP/2.0 4294967301 better not break the receiver",
            "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
            "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i",
            "CSeq: 353494 INVITE",
            "From: <sip:user@example.com>;tag=39ansfi3",
            "To: <sip:user@example.edu>;tag=902jndnke3",
            "Content-Length: 0",
            "Contact: <sip:user@host105.example.com>",
        ),
        "bad_response",
    )


# ---------------------------------------------------------------------------------------------
# 3.3 Application-layer semantics a parser decides.


def test_3_3_1_missing_required_headers() -> None:
    data = msg(
        "INVITE sip:user@example.com SIP/2.0",
        "CSeq: 193942 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf",
        "Content-Type: application/sdp",
        f"l: {len(sdp())}",
        body=sdp(),
    )
    resp = refused(data, 400, "Missing From Header")
    assert resp.countHFs("cseq") == 1 and resp.countHFs("call-id") == 0


def test_3_3_2_request_uri_with_unknown_scheme() -> None:
    refused(
        invite("CSeq: 8 OPTIONS", start="OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0"),
        416,
        "Unsupported URI Scheme",
    )


def test_3_3_3_request_uri_with_known_but_atypical_scheme() -> None:
    refused(invite("CSeq: 8 OPTIONS", start="OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0"), 416)


def test_3_3_4_unknown_uri_schemes_in_header_fields() -> None:
    data = msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: isbn:2983792873",
        "From: <http://www.example.com>;tag=3234233",
        "Call-ID: unksm2.daksdj@hyphenated-host.example.com",
        "CSeq: 234902 OPTIONS",
        "Max-Forwards: 70",
        "Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw",
        "Contact: <name:John_Smith>",
        "l: 0",
    )
    req, resp = accepted(data)
    assert resp.getSCodeNum() == 200
    assert resp.getHFBody("from").getTag() == "3234233"
    assert str(resp.getHFBody("from").getUrl()) == "http://www.example.com"


def test_3_3_5_require_of_unknown_extensions() -> None:
    data = invite(
        "CSeq: 8 OPTIONS",
        "Require: nothingSupportsThis, nothingSupportsThisEither",
        "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis",
        start="OPTIONS sip:user@example.com SIP/2.0",
    )
    resp = refused(data, 420, "Bad Extension")
    assert resp.getHFs("unsupported")[0].getValue() == "nothingSupportsThis, nothingSupportsThisEither"


def test_3_3_7_unknown_authorization_scheme_kept_as_text() -> None:
    data = invite("Authorization: NoOneKnowsThisScheme opaque-data=here", body=sdp())
    req, resp = accepted(data)
    hf = req.getHFs("authorization")[0]
    assert str(hf) == "Authorization: NoOneKnowsThisScheme opaque-data=here"
    assert resp.getSCodeNum() == 486


def test_3_3_8_multiple_values_in_single_value_required_fields() -> None:
    data = msg(
        "INVITE sip:user@company.com SIP/2.0",
        "Contact: <sip:caller@host25.example.net>",
        "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
        "Max-Forwards: 70",
        "CSeq: 5 INVITE",
        "Call-ID: multi01.98asdh@192.0.2.1",
        "CSeq: 59 INVITE",
        "Call-ID: multi01.98asdh@192.0.2.2",
        "From: sip:caller@example.com;tag=3413415",
        "To: sip:user@example.com",
        "To: sip:other@example.net",
        "From: sip:caller@example.net;tag=2923420123",
        "Content-Type: application/sdp",
        "l: 0",
    )
    resp = refused(data, 400)
    assert resp.getSCodeReason().startswith("Multiple ")
    # The first of each is what goes back.
    assert resp.getHFs("cseq")[0].getValue() == "5 INVITE"


def test_3_3_9_multiple_content_length_values() -> None:
    data = invite("CSeq: 8 OPTIONS", start="OPTIONS sip:user@example.com SIP/2.0").replace(
        b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 4\r\n"
    )
    refused(data + b"ab\r\n", 400, "Conflicting Content-Length Headers")


def test_3_3_10_response_with_broadcast_via_dropped() -> None:
    dropped(
        msg(
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
            "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23",
            "Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf",
            "CSeq: 35 INVITE",
            "From: sip:user@example.com;tag=11141343",
            "To: sip:user@example.edu;tag=2229",
            "Content-Length: 0",
        )
    )


def test_3_3_11_max_forwards_zero() -> None:
    refused(invite("CSeq: 8 OPTIONS", "Max-Forwards: 0", start="OPTIONS sip:user@example.com SIP/2.0"), 483)


def test_ack_of_any_kind_of_bad_request_is_dropped_and_counted() -> None:
    start = "ACK sip:user@example.com SIP/2.0"
    for bad in ('To: "Mr. J. User <sip:j.user@example.com>', "Require: foo", "Max-Forwards: 0"):
        r = dropped(invite("CSeq: 8 ACK", bad, start=start))
        assert r.tm.bad_counts == {"bad_ack": 1} or "Require" in bad
    # A mismatching CSeq does not make it an answerable request.
    assert dropped(invite("CSeq: 8 BYE", start=start)).tm.bad_counts == {"bad_ack": 1}


def test_bad_expires_refused_before_any_transaction() -> None:
    refused(invite("Expires: soon", body=sdp()), 400, "Bad Expires Header")


def test_3_1_1_11_binary_part_survives_a_parsed_multipart_mixed_body() -> None:
    binary = bytes(range(256))
    body = (
        b"--b1\r\nContent-Type: application/sdp\r\n\r\n"
        + sdp()
        + b"\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n"
        + binary
        + b"\r\n--b1--\r\n"
    )
    req = SipRequest(buf=invite("Content-Type: multipart/mixed;boundary=b1", body=body))
    parts = req.getBody().getContent()  # parsed (MultipartMixBody), then written back
    assert type(parts).__name__ == "MultipartMixBody"
    out = req.getCopy().localStr("127.0.0.1", 5060).encode("utf-8", "surrogateescape")
    assert out.endswith(b"\r\n\r\n" + body)


# ---------------------------------------------------------------------------------------------
# 3.2 Transaction layer, the rest of 3.3 and 3.4 (backward compatibility).


def test_3_2_1_missing_transaction_identifier() -> None:
    """An RFC 2543 peer's request (no z9hG4bK branch) is still a request: it reaches the core
    and is answered on the Via it came with."""
    for via in ("Via: SIP/2.0/UDP 192.0.2.1", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK"):
        data = msg(
            "OPTIONS sip:user@example.com SIP/2.0",
            "To: sip:user@example.com",
            "From: sip:caller@example.org;tag=33242",
            "Max-Forwards: 3",
            via,
            "Accept: application/sdp",
            "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n",
            "CSeq: 8 OPTIONS",
            "l: 0",
        )
        req, resp = accepted(data)
        assert resp is not None and resp.getSCodeNum() == 200
        assert resp.getHFs("via")[0].getValue().startswith(via[5:])


def unknown_type_invite(accept: str = "", ctype: str = "application/unknownformat") -> bytes:
    body = b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n' if ctype != "application/sdp" else sdp()
    return msg(
        "INVITE sip:j.user@example.com SIP/2.0",
        "Contact: <sip:caller@host5.example.net>",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=8392034",
        "Max-Forwards: 70",
        "Call-ID: invut.0ha0isndaksdjadsfij34n23d",
        "CSeq: 235448 INVITE",
        "Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw",
        *([accept] if accept else []),
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
        body=body,
    )


def test_3_3_6_unknown_content_type() -> None:
    """A body we cannot read as SDP: 415 naming what we take, and no call is made."""
    r = Run()
    resp = r.feed(unknown_type_invite())
    assert resp is not None and resp.getSL() == "SIP/2.0 415 Unsupported Media Type"
    assert resp.getHFs("accept")[0].getValue() == "application/sdp"
    assert r.cmap.ncalls_total == 0 and not r.tm.bad_counts and r.no_traceback()


def register(contact: str, call_id: str) -> bytes:
    return msg(
        "REGISTER sip:example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:j.user@example.com;tag=8",
        "Max-Forwards: 70",
        "Via: SIP/2.0/UDP 192.0.2.253;branch=z9hG4bKkdjuw",
        f"Call-ID: {call_id}",
        "CSeq: 139122385 REGISTER",
        contact,
        "l: 0",
    )


def test_3_3_12_register_with_contact_header_parameter() -> None:
    """This B2BUA is no registrar: a REGISTER parses and gets 501 with Allow (RFC 3261 8.2.1),
    as every REGISTER does without --sip_proxy; the Contact's header parameter is never read."""
    req, resp = accepted(register("Contact: sip:+19725552222@gw1.example.net;unknownparam", "regprm"))
    assert resp is not None and resp.getSCodeNum() == 501 and "INVITE" in str(resp.getHFBody("allow"))


def test_3_3_13_register_with_url_parameter() -> None:
    """As 3.3.12 (no registrar: 501); the url-parameter stays inside the Contact's URI."""
    req, resp = accepted(register("Contact: <sip:+19725552222@gw1.example.net;unknownparam>", "regurl"))
    assert resp is not None and resp.getSCodeNum() == 501
    assert req.getHFBody("contact").getUrl().host == "gw1.example.net"


def test_3_3_14_register_with_url_escaped_header() -> None:
    """As 3.3.12 (no registrar: 501); an escaped header in a bracketed Contact URI is legal."""
    data = register("Contact: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>", "regesc")
    req, resp = accepted(data)
    assert resp is not None and resp.getSCodeNum() == 501
    assert req.getHFBody("contact").getUrl().host == "example.com"


def test_3_3_15_unacceptable_accept_offering() -> None:
    """An SDP offer from a caller that accepts no SDP answer: 406, and no call is made."""
    r = Run()
    resp = r.feed(unknown_type_invite("Accept: text/nobodyKnowsThis", "application/sdp"))
    assert resp is not None and resp.getSL() == "SIP/2.0 406 Not Acceptable"
    assert r.cmap.ncalls_total == 0 and not r.tm.bad_counts and r.no_traceback()
    # Accepting SDP (or anything) lets the call go on: the test core answers 486.
    for accept in ("Accept: application/sdp", "Accept: text/plain, */*", ""):
        req, resp = accepted(unknown_type_invite(accept, "application/sdp"))
        assert resp is not None and resp.getSCodeNum() == 486


def test_3_4_1_invite_with_rfc2543_syntax() -> None:
    """RFC 2543 syntax (no Max-Forwards, no branch, no From tag): accepted and answered."""
    data = msg(
        "INVITE sip:UserB@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10",
        "From: <sip:UserA@example.com>",
        "To: <sip:UserB@example.com>",
        "Call-ID: 62a8c3d4-ba7b-48a6-be9e-6b4aaa67d9da@192.0.2.10",
        "CSeq: 1 INVITE",
        "Contact: <sip:UserA@192.0.2.10>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(sdp('192.0.2.10'))}",
        body=sdp("192.0.2.10"),
    )
    req, resp = accepted(data)
    assert req.getHFBody("from").getTag() is None
    assert resp is not None and resp.getSCodeNum() == 486
