"""VirtualIoLoop: real sockets, a clock that jumps when everything waits, and work outside the
loop (threads, subprocesses) holding the clock until it is done."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import pytest

from voxflow.media.pacer import shared_pacer
from voxflow.testing.violoop import VirtualIoLoop, run_virtual


def test_sleeping_costs_no_wall_time_and_keeps_the_order() -> None:
    async def main() -> tuple[float, list[str]]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        order: list[str] = []

        async def nap(name: str, seconds: float) -> None:
            await asyncio.sleep(seconds)
            order.append(name)

        await asyncio.gather(nap("late", 30.0), nap("early", 5.0), nap("middle", 12.5))
        return loop.time() - t0, order

    started = time.monotonic()
    elapsed, order = run_virtual(main())
    assert time.monotonic() - started < 2.0
    # the clock starts at the real monotonic time: t0 + 30 - t0 is 30 only within rounding
    assert elapsed == pytest.approx(30.0, abs=1e-9)
    assert order == ["early", "middle", "late"]


def test_a_thread_at_work_holds_the_clock() -> None:
    """A 0.2 s job in a worker thread under a 0.05 s (virtual) timeout: the clock does not move
    while the thread works, so the timeout cannot fire because the thread was slow."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(asyncio.to_thread(time.sleep, 0.2), 0.05)
        return loop.time() - t0

    assert run_virtual(main()) < 0.05


def test_a_subprocess_holds_the_clock_until_it_exits() -> None:
    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(0.2); print('done')",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 0.05)
        return out

    assert run_virtual(main()).strip() == b"done"


def test_datagrams_cross_real_sockets_between_virtual_sleeps() -> None:
    async def main() -> list[tuple[bytes, float]]:
        loop = asyncio.get_running_loop()
        got: list[tuple[bytes, float]] = []
        done = loop.create_future()

        class Rx(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got.append((data, round(loop.time() - t0, 3)))
                if len(got) == 3:
                    done.set_result(None)

        rx, _ = await loop.create_datagram_endpoint(Rx, local_addr=("127.0.0.1", 0))
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t0 = loop.time()
        try:
            for i in range(3):
                tx.sendto(bytes([i]), rx.get_extra_info("sockname"))
                await asyncio.sleep(0.02)
            await asyncio.wait_for(done, 1.0)
        finally:
            tx.close()
            rx.close()
        return got

    assert run_virtual(main()) == [(b"\x00", 0.0), (b"\x01", 0.02), (b"\x02", 0.04)]


def test_run_virtual_paces_rtp_on_the_loop_clock() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualIoLoop)
        return shared_pacer().early == 0.0

    assert run_virtual(main())


def test_voxflow_run_virtual_time_needs_a_scripted_sandbox_call(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from voxflow.cli.main import cli

    flow = str(Path(__file__).resolve().parents[2] / "flows" / "main_ivr.flow")
    alone = CliRunner().invoke(cli, ["run", flow, "--virtual-time", "--no-audio"])
    assert alone.exit_code == 2
    assert "--virtual-time: only for a sandbox call with --caller SCRIPT" in alone.output
    script = tmp_path / "caller.txt"
    script.write_text("hangup\n")
    on_ari = CliRunner().invoke(
        cli, ["run", flow, "--virtual-time", "--ari-url", "http://127.0.0.1:9/ari",
              "--ari-user", "u", "--ari-password", "p"],
    )  # fmt: skip
    assert on_ari.exit_code == 2 and "--virtual-time" in on_ari.output
