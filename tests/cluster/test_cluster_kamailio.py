"""docs/deploy/kamailio.cfg run by the real Kamailio (Debian's package) in front of two fake
Asterisk nodes (UDP SIP user agents answering INVITE and OPTIONS as told): calls are spread by
call load and each node's ``maxload`` (a finished call's load is released), and a node that
answers 503 has the call go on to the next one."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _header(msg: str, name: str) -> str:
    m = re.search(rf"(?mi)^{name}:\s*(.*?)\r$", msg)
    return m.group(1) if m else ""


def _reply(request: str, code: int, reason: str, contact: str, to_tag: str = "") -> bytes:
    """A response to ``request`` with its Via, From, To, Call-ID, CSeq and Record-Route."""
    lines = [f"SIP/2.0 {code} {reason}"]
    for line in request.split("\r\n")[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "from", "call-id", "cseq", "record-route"):
            lines.append(line)
        elif name == "to":
            lines.append(line + (f";tag={to_tag}" if to_tag and "tag=" not in line else ""))
    lines += [f"Contact: <{contact}>", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


class Node(asyncio.DatagramProtocol):
    """A fake Asterisk node: OPTIONS -> 200, INVITE -> ``answer`` (200 or 503), BYE -> 200."""

    def __init__(self, answer: int) -> None:
        self.answer = answer
        self.invites: list[str] = []  # Call-IDs
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = data.decode(errors="replace")
        method = msg.split(" ", 1)[0]
        assert self.transport is not None
        me = f"sip:node@127.0.0.1:{self.transport.get_extra_info('sockname')[1]}"
        if method == "INVITE":
            self.invites.append(_header(msg, "Call-ID"))
            if self.answer == 200:
                self.transport.sendto(_reply(msg, 200, "OK", me, "node"), addr)
            else:
                self.transport.sendto(_reply(msg, self.answer, "Unavailable", me), addr)
        elif method in ("OPTIONS", "BYE"):
            self.transport.sendto(_reply(msg, 200, "OK", me, "node"), addr)


class Caller(asyncio.DatagramProtocol):
    """The UAC: sends requests to Kamailio and queues the responses."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data.decode(errors="replace"))

    async def final(self, call_id: str, method: str) -> str:
        """The final response (>= 200) to ``method`` of ``call_id``."""
        async with asyncio.timeout(10):
            while True:
                msg = await self.replies.get()
                code = int(msg.split(" ", 2)[1])
                if _header(msg, "Call-ID") == call_id and method in _header(msg, "CSeq"):
                    if code >= 200:
                        return msg


def _request(
    method: str, target: str, me: int, call_id: str, cseq: int, extra: str = "", route: str = ""
) -> bytes:
    branch = f"z9hG4bK-{call_id}-{cseq}-{method}"
    return (
        f"{method} {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch={branch};rport\r\n"
        + (f"Route: {route}\r\n" if route else "")
        + "Max-Forwards: 70\r\n"
        f"From: <sip:caller@127.0.0.1>;tag=c-{call_id}\r\n"
        f"To: <sip:100@127.0.0.1>{extra}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:caller@127.0.0.1:{me}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@contextlib.asynccontextmanager
async def kamailio(tmp: Path, nodes: list[tuple[int, int]]) -> AsyncIterator[int]:
    """docs/deploy/kamailio.cfg on 127.0.0.1 (a free port), its dispatcher list the ``nodes``
    (port, maxload) on 127.0.0.1; yields its port once it answers OPTIONS."""
    exe = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if exe is None:
        pytest.fail("kamailio is not installed (`apt-get install -y kamailio`, see .ci/run)")
    port = _free_udp_port()
    listing = tmp / "dispatcher.list"
    listing.write_text(
        "".join(
            f"1 sip:127.0.0.1:{p} 0 0 duid=ast{i};maxload={load}\n"
            for i, (p, load) in enumerate(nodes)
        )
    )
    cfg = (DEPLOY / "kamailio.cfg").read_text()
    cfg = cfg.replace("listen=udp:0.0.0.0:5060", f"listen=udp:127.0.0.1:{port}")
    cfg = cfg.replace("/etc/kamailio/dispatcher.list", str(listing))
    cfg = cfg.replace("children=4", "children=1")
    (tmp / "kamailio.cfg").write_text(cfg)
    log = (tmp / "kamailio.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        exe, "-DD", "-E", "-f", str(tmp / "kamailio.cfg"), "-m", "32", "-M", "8",
        "-Y", str(tmp), "-P", str(tmp / "kamailio.pid"),
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        yield port
    finally:
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def _udp(proto: asyncio.DatagramProtocol, port: int = 0) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: proto, local_addr=("127.0.0.1", port)
    )
    return cast(asyncio.DatagramTransport, transport)


async def _invite(caller: Caller, me: int, kam: int, call_id: str) -> str:
    """INVITE through Kamailio: its final response (ACKed when 200: the call is up)."""
    assert caller.transport is not None
    target = f"sip:100@127.0.0.1:{kam}"
    caller.transport.sendto(_request("INVITE", target, me, call_id, 1), ("127.0.0.1", kam))
    final = await caller.final(call_id, "INVITE")
    if " 200 " in final.split("\r\n", 1)[0]:
        _in_dialog(caller, me, kam, call_id, final, "ACK", 1)
    return final


def _in_dialog(
    caller: Caller, me: int, kam: int, call_id: str, ok: str, method: str, cseq: int
) -> None:
    """An in-dialog request of the call that ``ok`` (its 200) set up: to the node's Contact,
    through Kamailio's Record-Route."""
    assert caller.transport is not None
    contact = _header(ok, "Contact").strip("<>")
    msg = _request(method, contact, me, call_id, cseq, ";tag=node", _header(ok, "Record-Route"))
    caller.transport.sendto(msg, ("127.0.0.1", kam))


async def _hang_up(caller: Caller, me: int, kam: int, call_id: str, ok: str) -> None:
    """BYE through Kamailio, until its 200."""
    _in_dialog(caller, me, kam, call_id, ok, "BYE", 2)
    await caller.final(call_id, "BYE")


def _status(final: str) -> int:
    return int(final.split(" ", 2)[1])


async def _ready(caller: Caller, me: int, kam: int) -> None:
    """Until Kamailio answers OPTIONS (it has started)."""
    assert caller.transport is not None
    for i in range(200):
        caller.transport.sendto(
            _request("OPTIONS", f"sip:127.0.0.1:{kam}", me, f"ping-{i}", 1), ("127.0.0.1", kam)
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.1):
                while True:
                    if _header(await caller.replies.get(), "Call-ID") == f"ping-{i}":
                        return
    raise AssertionError("kamailio never answered")


async def test_a_node_answering_503_has_the_call_go_to_the_next(tmp_path: Path) -> None:
    a, b = Node(200), Node(200)
    ta, tb = await _udp(a), await _udp(b)
    caller = Caller()
    tc = await _udp(caller)
    me = tc.get_extra_info("sockname")[1]
    nodes = {ta.get_extra_info("sockname")[1]: a, tb.get_extra_info("sockname")[1]: b}
    try:
        async with kamailio(tmp_path, [(p, 10) for p in nodes]) as kam:
            await _ready(caller, me, kam)
            first = await _invite(caller, me, kam, "call-1")  # up: its node carries one call
            assert _status(first) == 200
            busy = a if a.invites else b
            idle = b if busy is a else a
            idle.answer = 503  # the least loaded node refuses the next call
            second = await _invite(caller, me, kam, "call-2")
            assert _status(second) == 200  # the next node took it
            assert idle.invites == ["call-2"] and busy.invites == ["call-1", "call-2"]
            await _hang_up(caller, me, kam, "call-1", first)
            await _hang_up(caller, me, kam, "call-2", second)
    finally:
        for t in (ta, tb, tc):
            t.close()


async def test_calls_are_spread_by_load_up_to_maxload_and_a_hang_up_frees_a_slot(
    tmp_path: Path,
) -> None:
    a, b = Node(200), Node(200)
    ta, tb = await _udp(a), await _udp(b)
    caller = Caller()
    tc = await _udp(caller)
    me = tc.get_extra_info("sockname")[1]
    ports = [ta.get_extra_info("sockname")[1], tb.get_extra_info("sockname")[1]]
    try:
        async with kamailio(tmp_path, [(ports[0], 1), (ports[1], 1)]) as kam:  # maxload 1
            await _ready(caller, me, kam)
            one = await _invite(caller, me, kam, "call-1")
            two = await _invite(caller, me, kam, "call-2")
            assert (_status(one), _status(two)) == (200, 200)
            assert len(a.invites) == len(b.invites) == 1  # one call on each node
            three = await _invite(caller, me, kam, "call-3")  # both nodes full
            assert _status(three) == 503 and "No Asterisk node available" in three
            node_of_one = a if a.invites == ["call-1"] else b
            await _hang_up(caller, me, kam, "call-1", one)  # its node's slot is free again
            four = await _invite(caller, me, kam, "call-4")
            assert _status(four) == 200 and node_of_one.invites == ["call-1", "call-4"]
            await _hang_up(caller, me, kam, "call-2", two)
            await _hang_up(caller, me, kam, "call-4", four)
    finally:
        for t in (ta, tb, tc):
            t.close()
