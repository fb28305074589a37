"""The writer's script link: RESP2 bytes both ways, and a real redis-server (scripts flushed,
a password and a database, a stalled Redis, a restart)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _cluster_kit import running_redis, start_redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voxflow.cluster.resp import INCOMPLETE, Reader, ScriptLink, pack, supported

SCRIPT = """
redis.call('set', KEYS[1], ARGV[1])
return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2]), #ARGV, {1, false}}
"""


def test_a_command_packs_as_an_array_of_bulk_strings() -> None:
    assert pack(b"EVALSHA", "ab", 2, "é") == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$2\r\n\xc3\xa9\r\n"
    )


def test_replies_are_read_whole_whatever_the_bytes_arrive_in() -> None:
    stream = (
        b"*4\r\n$5\r\nhe\r\no\r\n$-1\r\n:-12\r\n*2\r\n:1\r\n*-1\r\n"  # nested, nil, CRLF inside
        b"+OK\r\n-NOSCRIPT No matching script\r\n$0\r\n\r\n"
    )
    want: list[object] = [[b"he\r\no", None, -12, [1, None]], b"OK", "error", b""]
    for size in (1, 2, 3, 7, len(stream)):  # every split of the stream into chunks
        reader, got = Reader(), []
        for i in range(0, len(stream), size):
            reader.feed(stream[i : i + size])
            while (reply := reader.get()) is not INCOMPLETE:
                got.append(reply)
        assert len(got) == 4
        assert isinstance(got[2], ResponseError) and str(got[2]).startswith("NOSCRIPT")
        got[2] = "error"
        assert got == want


def test_a_stream_that_is_not_resp_is_an_error() -> None:
    reader = Reader()
    reader.feed(b"HTTP/1.1 400 Bad Request\r\n")
    with pytest.raises(RedisConnectionError, match="not a RESP2 reply"):
        reader.get()


def test_only_plain_tcp_urls_take_the_link() -> None:
    assert supported("redis://127.0.0.1:6379/0")
    assert supported("redis://user:secret@10.0.0.5:6380/2")
    assert not supported("rediss://10.0.0.5:6380/0")  # TLS: redis-py's client
    assert not supported("unix:///run/redis.sock")
    assert not supported("http://10.0.0.5/")


async def test_the_script_runs_again_after_redis_forgot_it(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        link = ScriptLink(rs.url, SCRIPT, timeout=10.0)
        client = aioredis.Redis.from_url(rs.url)
        try:
            await client.set("other", "x")
            got = await link(["k", "other"], ["v1", "a2"])
            assert got == [b"v1", b"x", 2, [1, None]]  # (EVAL the first time: NOSCRIPT)
            assert await client.script_exists(link.sha) == [True]
            await client.script_flush()  # a restarted or flushed Redis
            assert (await link(["k", "none"], ["v2"]))[:3] == [b"v2", None, 1]
            bad = ScriptLink(rs.url, "return redis.call('incr', KEYS[1])", timeout=10.0)
            with pytest.raises(ResponseError):  # an error reply is raised, the link goes on
                await bad(["k"], [])
            assert (await bad(["n"], [])) == 1
            await bad.aclose()
        finally:
            await link.aclose()
            await client.aclose()


async def test_a_password_and_a_database_in_the_url(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        admin = aioredis.Redis.from_url(rs.url)
        await admin.config_set("requirepass", "s3cret")
        await admin.aclose()
        base = rs.url.rsplit("/", 1)[0].replace("redis://", "redis://:s3cret@")
        link = ScriptLink(base + "/3", SCRIPT, timeout=10.0)
        wrong = ScriptLink(base.replace("s3cret", "nope") + "/0", SCRIPT, timeout=10.0)
        db3 = aioredis.Redis.from_url(base + "/3")
        try:
            await link(["k", "x"], ["in-3"])
            assert await db3.get("k") == b"in-3"
            with pytest.raises(RedisConnectionError) as refused:
                await wrong(["k", "x"], ["v"])
            assert "nope" not in str(refused.value)  # never the password in an error
        finally:
            await link.aclose()
            await wrong.aclose()
            await db3.aclose()


async def test_a_stalled_redis_times_out_and_the_next_command_reconnects(tmp_path: Path) -> None:
    rs = await start_redis(tmp_path / "r")
    rs2 = None
    link = ScriptLink(rs.url, SCRIPT, timeout=0.3)
    try:
        await link(["k", "x"], ["v"])
        rs.proc.send_signal(signal.SIGSTOP)  # Redis stalls (its host swapping, say)
        try:
            with pytest.raises(RedisTimeoutError):
                await link(["k", "x"], ["late"])
        finally:
            rs.proc.send_signal(signal.SIGCONT)
        assert (await link(["k", "x"], ["again"]))[0] == b"again"  # a new connection
        await rs.stop()  # Redis dies: refused until it is back
        with pytest.raises(RedisError):
            await link(["k", "x"], ["down"])
        rs2 = await start_redis(tmp_path / "r2", port=rs.port)
        assert (await link(["k", "x"], ["back"]))[0] == b"back"
    finally:
        await link.aclose()
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()
