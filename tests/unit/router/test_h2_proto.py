"""The sans-IO HTTP/2 server (proto/h2.py) and its HPACK (proto/hpack.py): against h2/hpack as the
reference peer, and frame by frame for the error cases."""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spruce.router.proto import h2 as P
from spruce.router.proto.hpack import Decoder, Encoder, HeaderListTooLarge, HPACKError, encode_int

# --- HPACK -------------------------------------------------------------------------------

names = st.sampled_from([b"x-a", b"x-b", b"cookie", b"content-type", b":path", b"date", b"via"])
values = st.binary(min_size=0, max_size=40)
header_lists = st.lists(st.lists(st.tuples(names, values), max_size=8), min_size=1, max_size=12)


@given(header_lists, st.booleans(), st.lists(st.sampled_from([0, 100, 4096]), max_size=3))
@settings(max_examples=150, deadline=None)
def test_decoder_agrees_with_hpack_encoder(lists, huffman, sizes):
    enc = hpack.Encoder()
    dec = Decoder()
    for i, headers in enumerate(lists):
        if i < len(sizes):
            enc.header_table_size = sizes[i]  # announced at the start of the next block
        block = enc.encode(headers, huffman=huffman)
        assert dec.decode(block) == headers


@given(header_lists, st.lists(st.sampled_from([0, 64, 4096, 65536]), max_size=4))
@settings(max_examples=150, deadline=None)
def test_encoder_agrees_with_hpack_decoder(lists, peer_sizes):
    enc = Encoder()
    dec = hpack.Decoder()
    for i, headers in enumerate(lists):
        if i < len(peer_sizes):
            enc.set_peer_max(peer_sizes[i])
            dec.max_allowed_table_size = peer_sizes[i]
        assert [tuple(h) for h in dec.decode(enc.encode(headers), raw=True)] == headers
        assert dec.header_table_size <= max(peer_sizes[: i + 1] or [4096])


def test_encoder_indexes_repeated_fields_but_never_secrets():
    enc = Encoder()
    first = enc.encode([(b"server", b"nginx"), (b"set-cookie", b"s=1")])
    again = enc.encode([(b"server", b"nginx"), (b"set-cookie", b"s=1")])
    assert len(again) < len(first)
    assert again[0] == 0x80 | 62  # server: nginx, from the dynamic table
    assert again[1] == 0x10 | 0x0F  # set-cookie: never indexed (static name index 55)


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # index 0
        b"\xff\x00",  # index 127: beyond both tables
        b"\x41",  # literal with a name index and no value
        b"\x40\x85ab",  # string longer than the block
        b"\x82\x3f\xe1\x1f",  # table size update after a field
        b"\x3f\xe2\x1f",  # table size update above our setting (4096)
        b"\xff\xff\xff\xff\xff\xff\x01",  # integer overflow
        b"\x00\x83\xff\xff\xff\x01a",  # bad huffman (EOS) in a name
    ],
)
def test_decoder_refuses_broken_blocks(block):
    with pytest.raises(HPACKError):
        Decoder().decode(block)


def test_decoder_header_list_limit():
    dec = Decoder(max_list=100)
    with pytest.raises(HeaderListTooLarge):
        dec.decode(b"\x00\x03x-a" + bytes([80]) + b"v" * 80)


# --- the connection ----------------------------------------------------------------------


def pair(client_settings=None):
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
    client = h2.connection.H2Connection(cfg)
    client.initiate_connection()
    if client_settings:
        client.update_settings(client_settings)
    server = P.H2Server(max_concurrent=4)
    server.initiate()
    assert server.receive(client.data_to_send()) == [(P.EV_WINDOW, 0)] * (
        2 if client_settings else 1
    )
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send())  # SETTINGS ACK
    return client, server


REQ = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"), (b":authority", b"a.b")]


def exchange(client, server, data=None):
    events = server.receive(data if data is not None else client.data_to_send())
    out = client.receive_data(server.data_to_send())
    return events, out


def test_request_response_round_trip_and_header_block_cache():
    client, server = pair()
    reqs = []
    for sid in (1, 3, 5):
        client.send_headers(sid, REQ + [(b"x-n", b"1")], end_stream=True)
        (ev,), _ = exchange(client, server)
        assert ev[0] == P.EV_REQUEST and ev[1] == sid and ev[3] is True
        reqs.append(ev[2])
        server.send_headers(sid, [(b":status", b"200"), (b"server", b"x")])
        server.send_data(sid, b"hello", end_stream=True)
        _, out = exchange(client, server, b"")
        kinds = [type(e) for e in out]
        assert kinds == [h2.events.ResponseReceived, h2.events.DataReceived, h2.events.StreamEnded]
    assert reqs[1] is reqs[2]  # the same block against the same table: one validation
    assert reqs[0].method == "GET" and reqs[0].authority == "a.b"
    assert not server.streams


def test_cache_follows_the_hpack_table():
    # "62" means the newest dynamic entry: the same bytes must decode anew once it changed
    client, server = pair()
    lit = encode_int(0, 6, 0x40) + b"\x03x-v" + b"\x01"
    head = bytes([0x82, 0x84, 0x87]) + b"\x01\x03a.b"  # GET / https, :authority a.b (no index)

    def send(sid, block):
        frame = P.frame(P.HEADERS, P.END_STREAM | P.END_HEADERS, sid, block)
        events = server.receive(frame)
        server.send_headers(sid, [(b":status", b"204")], end_stream=True)
        return events

    send(1, head + lit + b"1")
    (ev,) = send(3, head + b"\xbe")  # index 62
    assert ("x-v", "1") in ev[2].headers
    (ev2,) = send(5, head + b"\xbe")
    assert ev2[2] is ev[2]
    send(7, head + lit + b"2")
    (ev3,) = send(9, head + b"\xbe")
    assert ("x-v", "2") in ev3[2].headers


def test_body_flow_control_and_window_updates():
    client, server = pair()
    client.send_headers(1, REQ, end_stream=False)
    client.send_data(1, b"x" * 16384)
    client.send_data(1, b"y" * 16384)
    events, _ = exchange(client, server)
    assert [e[0] for e in events] == [P.EV_REQUEST, P.EV_DATA, P.EV_DATA]
    server.ack(1, 16384)
    assert server.data_to_send() == b""  # below half a window: no update yet
    server.ack(1, 16384)
    _, out = exchange(client, server, b"")
    updates = [e for e in out if isinstance(e, h2.events.WindowUpdated)]
    assert {(e.stream_id, e.delta) for e in updates} == {(0, 32768), (1, 32768)}


def test_client_overrunning_windows():
    # a stream's window overrun resets that stream
    client, server = pair()
    client.send_headers(1, REQ, end_stream=False)
    server.receive(client.data_to_send())
    data = b"".join(P.frame(P.DATA, 0, 1, b"z" * 16384) for _ in range(4))
    data += P.frame(P.DATA, 0, 1, b"z" * 100)  # 65636 > 65535
    events = server.receive(data)
    assert events[-1] == (P.EV_RESET, 1, P.FLOW_CONTROL_ERROR) and server.error is None
    # the connection's window (every stream's window together) overrun ends the connection
    client, server = pair()
    for sid in (1, 3, 5, 7):
        client.send_headers(sid, REQ, end_stream=False)
    server.receive(client.data_to_send())
    full = b"".join(P.frame(P.DATA, 0, 1, b"z" * 16383) for _ in range(4)) + P.frame(
        P.DATA, 0, 1, b"z" * 3
    )
    for sid in (1, 3, 5, 7):
        assert server.receive(full.replace(b"\x00\x00\x00\x01", sid.to_bytes(4, "big")))
    assert server.error is None
    server.receive(P.frame(P.DATA, 0, 3, b"z"))
    assert server.error == P.FLOW_CONTROL_ERROR


def test_connection_window_covers_every_stream():
    server = P.H2Server(max_concurrent=128)
    server.initiate()
    out = server.data_to_send()
    update = P.frame(P.WINDOW_UPDATE, 0, 0, (127 * 65535).to_bytes(4, "big"))
    assert out.endswith(update) and server.recv_window == 128 * 65535


def test_sending_respects_windows_and_frame_size():
    client, server = pair({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100})
    client.send_headers(1, REQ, end_stream=True)
    exchange(client, server)
    assert server.window(1) == 100
    server.send_headers(1, [(b":status", b"200")])
    with pytest.raises(ValueError):
        server.send_data(1, b"x" * 101)
    server.send_data(1, b"x" * 100)
    assert server.window(1) == 0
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 40000})
    events, _ = exchange(client, server)
    assert server.window(1) == 39900
    server.send_data(1, b"y" * 39900, end_stream=True)
    _, out = exchange(client, server, b"")
    sizes = [len(e.data) for e in out if isinstance(e, h2.events.DataReceived)]
    assert sizes == [16384, 16384, 7132] and isinstance(out[-1], h2.events.StreamEnded)
    with pytest.raises(P.StreamGone):
        server.window(1)


def test_large_header_block_goes_out_with_continuation_and_table_size_zero():
    client, server = pair({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    client.send_headers(1, REQ, end_stream=True)
    exchange(client, server)
    big = [(b":status", b"200")] + [(f"x-{i}".encode(), b"v" * 1000) for i in range(40)]
    server.send_headers(1, big, end_stream=True)
    data = server.data_to_send()
    assert data[3] == P.HEADERS and b"\x09" in data  # CONTINUATION frames follow
    (resp, end) = client.receive_data(data)
    assert list(resp.headers) == big and isinstance(end, h2.events.StreamEnded)


def test_ping_settings_and_unknown_frames():
    client, server = pair()
    server.receive(P.frame(P.PING, 0, 0, b"12345678") + P.frame(0xFA, 0, 0, b"ext"))
    assert server.data_to_send() == P.frame(P.PING, P.ACK, 0, b"12345678")
    server.receive(P.frame(P.SETTINGS, 0, 0, struct.pack(">HI", 0x99, 7)))  # unknown: ignored
    assert server.data_to_send() == P.frame(P.SETTINGS, P.ACK, 0)
    assert server.error is None


def test_continuation_and_padding_and_priority():
    client, server = pair()
    block = client.encoder.encode(REQ)
    frames = P.frame(P.HEADERS, P.PRIORITY_FLAG, 1, b"\x00\x00\x00\x00\x10" + block[:3])
    frames += P.frame(P.CONTINUATION, 0, 1, block[3:5])
    frames += P.frame(P.CONTINUATION, P.END_HEADERS, 1, block[5:])
    frames += P.frame(P.DATA, P.PADDED | P.END_STREAM, 1, b"\x03abc\x00\x00\x00")
    events = server.receive(frames)
    assert [e[0] for e in events] == [P.EV_REQUEST, P.EV_DATA, P.EV_END]
    assert events[1][2] == b"abc"


def test_streams_beyond_max_concurrent_are_refused():
    client, server = pair()
    for sid in (1, 3, 5, 7):
        client.send_headers(sid, REQ, end_stream=True)
    data = client.data_to_send()  # the client would not open a fifth: send it raw
    data += P.frame(P.HEADERS, P.END_HEADERS | P.END_STREAM, 9, client.encoder.encode(REQ))
    events = server.receive(data)
    assert [e[1] for e in events] == [1, 3, 5, 7]
    assert server.data_to_send() == P.frame(P.RST_STREAM, 0, 9, P.REFUSED_STREAM.to_bytes(4, "big"))
    assert server.error is None


def test_client_reset_and_frames_after_our_reset():
    client, server = pair()
    client.send_headers(1, REQ, end_stream=False)
    client.send_headers(3, REQ, end_stream=False)
    exchange(client, server)
    client.reset_stream(1)
    events, _ = exchange(client, server)
    assert events == [(P.EV_RESET, 1, 0)]
    server.reset_stream(3, P.CANCEL)
    exchange(client, server, b"")
    # DATA the client had in flight for stream 3 is ignored, its window comes back
    events = server.receive(P.frame(P.DATA, 0, 3, b"q" * 16000) * 3)
    assert events == [] and server.error is None
    assert b"\x08" in server.data_to_send()  # WINDOW_UPDATE on the connection


@pytest.mark.parametrize(
    "frames,code",
    [
        (P.frame(P.PING, 0, 0, b"1234567"), P.FRAME_SIZE_ERROR),
        (P.frame(P.PING, 0, 1, b"12345678"), P.PROTOCOL_ERROR),
        (P.frame(P.DATA, 0, 0, b"x"), P.PROTOCOL_ERROR),
        (P.frame(P.DATA, 0, 11, b"x"), P.PROTOCOL_ERROR),  # idle stream
        (P.frame(P.HEADERS, P.END_HEADERS, 2, b"\x82"), P.PROTOCOL_ERROR),  # even id
        (P.frame(P.HEADERS, 0, 1, b"\x82") + P.frame(P.PING, 0, 0, b"x" * 8), P.PROTOCOL_ERROR),
        (P.frame(P.CONTINUATION, P.END_HEADERS, 1, b"\x82"), P.PROTOCOL_ERROR),
        (P.frame(P.HEADERS, P.END_HEADERS, 1, b"\x80"), P.COMPRESSION_ERROR),
        (P.frame(P.PUSH_PROMISE, 0, 1, b"\x00\x00\x00\x02"), P.PROTOCOL_ERROR),
        (P.frame(P.SETTINGS, 0, 0, b"\x00\x04\x80\x00\x00\x00"), P.FLOW_CONTROL_ERROR),
        (P.frame(P.SETTINGS, 0, 0, b"\x00\x05\x00\x00\x00\x01"), P.PROTOCOL_ERROR),
        (P.frame(P.SETTINGS, 0, 0, b"\x00\x02\x00\x00\x00\x02"), P.PROTOCOL_ERROR),
        (P.frame(P.SETTINGS, 0, 0, b"\x00\x02\x00"), P.FRAME_SIZE_ERROR),
        (P.frame(P.SETTINGS, P.ACK, 0, b"\x00\x02\x00\x00\x00\x00"), P.FRAME_SIZE_ERROR),
        (P.frame(P.WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"), P.PROTOCOL_ERROR),
        (P.frame(P.WINDOW_UPDATE, 0, 0, b"\x7f\xff\xff\xff"), P.FLOW_CONTROL_ERROR),
        (P.frame(P.RST_STREAM, 0, 7, b"\x00\x00\x00\x00"), P.PROTOCOL_ERROR),  # idle stream
        (P.frame(P.GOAWAY, 0, 1, b"\x00" * 8), P.PROTOCOL_ERROR),
        (b"\x00\x40\x01\x00\x00\x00\x00\x00\x01", P.FRAME_SIZE_ERROR),  # 16385 bytes
    ],
)
def test_connection_errors(frames, code):
    client, server = pair()
    server.receive(frames)
    assert server.error == code
    data = server.data_to_send()
    assert data[3] == P.GOAWAY and int.from_bytes(data[13:17], "big") == code
    assert server.receive(P.frame(P.PING, 0, 0, b"12345678")) == []


def test_bad_preface_and_missing_settings():
    server = P.H2Server()
    server.receive(b"GET / HTTP/1.1\r\n\r\n")
    assert server.error == P.PROTOCOL_ERROR
    server = P.H2Server()
    server.receive(P.PREFACE + P.frame(P.PING, 0, 0, b"12345678"))
    assert server.error == P.PROTOCOL_ERROR
    server = P.H2Server()  # the preface may come in pieces
    assert server.receive(P.PREFACE[:5]) == [] and server.error is None


def test_headers_on_a_stream_closed_normally_is_a_connection_error():
    client, server = pair()
    client.send_headers(1, REQ, end_stream=True)
    exchange(client, server)
    server.send_headers(1, [(b":status", b"204")], end_stream=True)
    block = client.encoder.encode([(b"x-late", b"1")])
    server.receive(P.frame(P.HEADERS, P.END_HEADERS | P.END_STREAM, 1, block))
    assert server.error == P.STREAM_CLOSED


def test_stream_errors_keep_the_connection():
    client, server = pair()
    client.send_headers(1, REQ, end_stream=False)
    exchange(client, server)
    events = server.receive(P.frame(P.WINDOW_UPDATE, 0, 1, b"\x00\x00\x00\x00"))
    assert events == [(P.EV_RESET, 1, P.PROTOCOL_ERROR)]
    events = server.receive(P.frame(P.PRIORITY, 0, 3, b"\x00\x00\x00\x03\x10"))  # on itself
    assert events == [] and server.error is None
    assert server.data_to_send().count(bytes([P.RST_STREAM])) >= 2


def test_rapid_reset_and_control_floods_end_the_connection():
    # a client opening and cancelling streams (or pinging) without letting any complete
    client, server = pair()
    sid = 1
    for _ in range(P.FLOOD_BASE - 2):  # (the client's first SETTINGS counted too)
        client.send_headers(sid, REQ, end_stream=True)
        client.reset_stream(sid)
        sid += 2
    server.receive(client.data_to_send())
    assert server.error is None  # a browser cancelling streams is nowhere near this
    for _ in range(3):
        client.send_headers(sid, REQ, end_stream=True)
        client.reset_stream(sid)
        sid += 2
    server.receive(client.data_to_send())
    assert server.error == P.ENHANCE_YOUR_CALM
    out = server.data_to_send()
    assert out[-17 + 3] == P.GOAWAY and out[-4:] == struct.pack(">I", P.ENHANCE_YOUR_CALM)

    _, server = pair()
    server.receive(P.frame(P.PING, 0, 0, b"12345678") * (P.FLOOD_BASE + 5))
    assert server.error == P.ENHANCE_YOUR_CALM


def test_answered_streams_earn_room_for_resets_and_pings():
    client, server = pair()
    sid = 1
    for _ in range(P.FLOOD_BASE):  # a long-lived connection doing real work...
        client.send_headers(sid, REQ, end_stream=True)
        exchange(client, server)
        server.send_headers(sid, [(b":status", b"204")], end_stream=True)
        exchange(client, server, b"")
        sid += 2
    # ...may ping and cancel in proportion
    server.receive(P.frame(P.PING, 0, 0, b"12345678") * (2 * P.FLOOD_BASE))
    assert server.error is None


def test_encoder_memo_follows_the_table():
    # repeated response header lists come from the memo, and stay correct across insertions,
    # evictions and a client shrinking the table
    enc = Encoder()
    dec = hpack.Decoder()
    base = [(b":status", b"200"), (b"server", b"nginx"), (b"x-n", b"1")]
    for i in range(300):
        hs = base + [(b"date", b"d%d" % (i // 7)), (b"x-big", b"v" * (i % 50))]
        for _ in range(2):
            assert dec.decode(enc.encode(hs), raw=True) == hs
        if i == 150:
            enc.set_peer_max(256)
            dec.header_table_size = 256
            assert dec.decode(enc.encode(base), raw=True) == base


def test_empty_continuation_flood_ends_the_connection():
    # CONTINUATION frames without a byte of header block (CVE-2024-27316 and kin): each costs
    # the router a frame and a list entry, so they count against the header block's limit
    client, server = pair()
    server.receive(P.frame(P.HEADERS, 0, 1, client.encoder.encode(REQ)))
    empty = P.frame(P.CONTINUATION, 0, 1)
    for _ in range(30):
        server.receive(empty * 10000)
        if server.error is not None:
            break
    assert server.error == P.ENHANCE_YOUR_CALM


def test_resets_the_client_provokes_count_as_its_own():
    # a client can make the server reset streams it has taken (a zero WINDOW_UPDATE, DATA
    # after END_STREAM, a bad PRIORITY...: "MadeYouReset", CVE-2025-8671); those cost the
    # dyno a request each, just as the client's own resets do
    client, server = pair()
    sid = 1
    for _ in range(P.FLOOD_BASE + 10):
        block = client.encoder.encode(REQ)
        data = P.frame(P.HEADERS, P.END_HEADERS | P.END_STREAM, sid, block)
        data += P.frame(P.WINDOW_UPDATE, 0, sid, b"\x00\x00\x00\x00")
        events = server.receive(data)
        if server.error is not None:
            break
        assert [e[0] for e in events] == [P.EV_REQUEST, P.EV_RESET]
        sid += 2
    assert server.error == P.ENHANCE_YOUR_CALM
