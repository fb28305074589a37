"""FrameDecoder against frames serialized by the websockets library (server side, unmasked):
any split of the byte stream, every length encoding, fragments, control frames, violations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from voxflow.ari.wsframes import (
    OP_PING,
    OP_PONG,
    FrameDecoder,
    WsProtocolError,
    client_frame,
    parse_close,
)


def server_frame(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=False)


def feed_in_pieces(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    last = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += decoder.feed(data[last:cut])
        last = cut
    return out


# payload lengths across the 7-bit / 16-bit / 64-bit length encodings
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.sampled_from(SIZES), min_size=1, max_size=6),
    binary=st.lists(st.booleans(), min_size=6, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=500_000), max_size=12),
)
def test_any_split_of_the_stream_gives_the_same_messages(
    sizes: list[int], binary: list[bool], cuts: list[int]
) -> None:
    messages = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
    stream = b"".join(
        server_frame(Opcode.BINARY if binary[i] else Opcode.TEXT, m) for i, m in enumerate(messages)
    )
    decoder = FrameDecoder()
    assert feed_in_pieces(decoder, stream, cuts) == messages
    assert decoder.control == [] and decoder.close_frame is None


def test_byte_by_byte_feed_of_a_long_frame() -> None:
    message = bytes(range(256)) * 300  # 76,800 bytes: 64-bit length
    stream = server_frame(Opcode.TEXT, message)
    decoder = FrameDecoder()
    got = [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]
    assert got == [message]


def test_fragments_are_joined_and_control_frames_set_aside() -> None:
    stream = (
        server_frame(Opcode.TEXT, b'{"type":', fin=False)
        + server_frame(Opcode.PING, b"are you there")
        + server_frame(Opcode.CONT, b'"StasisStart"', fin=False)
        + server_frame(Opcode.CONT, b"}")
        + server_frame(Opcode.PONG, b"yes")
        + server_frame(Opcode.TEXT, b"next")
    )
    decoder = FrameDecoder()
    assert decoder.feed(stream) == [b'{"type":"StasisStart"}', b"next"]
    assert decoder.control == [(OP_PING, b"are you there"), (OP_PONG, b"yes")]


def test_nothing_is_decoded_after_a_close_frame() -> None:
    close = Frame(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"going away").serialize(mask=False)
    decoder = FrameDecoder()
    out = decoder.feed(server_frame(Opcode.TEXT, b"a") + close + server_frame(Opcode.TEXT, b"b"))
    assert out == [b"a"]
    assert decoder.close_frame is not None
    assert parse_close(decoder.close_frame) == (1001, "going away")
    assert decoder.feed(server_frame(Opcode.TEXT, b"c")) == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame(0x1, b"masked"), 1002),  # servers never mask
        (bytes([0x81 | 0x40, 1]) + b"x", 1002),  # RSV1 without an extension
        (server_frame(Opcode.CONT, b"x"), 1002),  # continuation of nothing
        (bytes([0x83, 1]) + b"x", 1002),  # reserved opcode 0x3
        (bytes([0x89, 126, 0, 200]) + b"x" * 200, 1002),  # control frame over 125 bytes
        (bytes([0x09, 1]) + b"x", 1002),  # fragmented ping
        (server_frame(Opcode.TEXT, b"a", fin=False) + server_frame(Opcode.TEXT, b"b"), 1002),
        (bytes([0x81, 127]) + (1 << 40).to_bytes(8, "big"), 1009),  # over max_size
    ],
    ids=[  # fixed ids: the masked frame's random mask must not change a test's name
        "masked",
        "rsv1",
        "lone-continuation",
        "reserved-opcode",
        "long-control",
        "fragmented-ping",
        "unfinished-text",
        "over-max-size",
    ],
)
def test_protocol_violations_name_the_close_code(data: bytes, code: int) -> None:
    with pytest.raises(WsProtocolError) as caught:
        FrameDecoder(max_size=1 << 20).feed(data)
    assert caught.value.code == code


def test_a_fragmented_message_over_max_size_is_refused() -> None:
    decoder = FrameDecoder(max_size=100)
    decoder.feed(server_frame(Opcode.TEXT, b"x" * 60, fin=False))
    with pytest.raises(WsProtocolError) as caught:
        decoder.feed(server_frame(Opcode.CONT, b"x" * 60))
    assert caught.value.code == 1009


def test_client_frames_are_masked_and_carry_the_payload() -> None:
    frame = client_frame(OP_PING, b"hello")
    assert frame[0] == 0x89 and frame[1] == 0x80 | 5
    mask, body = frame[2:6], frame[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"hello"


def test_parse_close_of_empty_and_broken_payloads() -> None:
    assert parse_close(b"") == (1005, "")
    assert parse_close((999).to_bytes(2, "big"))[0] == 1002  # not a valid close code
    assert parse_close((1000).to_bytes(2, "big") + b"\xff")[0] == 1002  # reason not UTF-8
