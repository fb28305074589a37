"""``python -c "from voxflow.cli.main import main; main()" ARGS`` for the tests, forked from a
process that has already imported voxflow, instead of started from scratch.

Why: importing ``voxflow.cli.run`` takes ~1.2 s of CPU (pydantic models, aiohttp, numpy), about
70 % of what a test's worker process uses in all; the cluster tests start ~60 of them, on a
2-core machine that runs the suite CPU-bound. Each pytest process starts one *zygote* (on first
use): it imports the CLI, then for each request forks a *keeper* that forks the voxflow process
and waits for it. The voxflow process then runs the very code ``-c`` runs (``main()`` at the top
level of the ``-c`` program, the interpreter's normal exit), with the request's argv, environment
(``VOXFLOW_FAULT`` re-read: :mod:`voxflow.faults` reads it at import), working directory and
standard streams (buffered as at start-up: ``PYTHONUNBUFFERED`` or not), the signal
dispositions of a new process and its own random seeds (``random``, numpy's global one). What
stays is what importing did before the fork: the modules, and their import-time state, in the
garbage collector's permanent generation (``gc.freeze()``, which ``voxflow run`` itself does
before it serves: without it the child's exit alone took ~1 s of CPU, copying every shared
page).

:func:`spawn` returns a :class:`Forked`, the part of ``asyncio.subprocess.Process`` the tests use
(``pid``, ``returncode``, ``stdout``, ``stderr``, ``send_signal``, ``terminate``, ``kill``,
``wait``, ``communicate``). ``pid`` is the voxflow process's own (a worker id is
``host-pid``): signals reach it directly. Its keeper reports its exit status (negative: the
signal that ended it, as asyncio does) on a pipe the test reads."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

__all__ = ["Forked", "run", "spawn"]

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL

_ZYGOTE = r"""
import gc, json, os, random, signal, socket, sys, threading
import voxflow.cli.main, voxflow.cli.run, voxflow.cluster, voxflow.faults
assert threading.active_count() == 1, "the zygote must not fork with threads running"
def serve():
    sock = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the kernel
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        if not msg:
            os._exit(0)  # the tests' process is gone
        gc.freeze()  # (as `voxflow run` does before serving) or the child's exit copies every page
        if os.fork():
            for fd in fds:
                os.close(fd)
            continue
        # the keeper: forks the voxflow process, reports its pid and exit status
        sock.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        req = json.loads(msg)
        out, err, status = fds
        pid = os.fork()
        if pid:
            os.close(out)
            os.close(err)
            os.write(status, b"%d\n" % pid)
            _, st = os.waitpid(pid, 0)
            code = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
            os.write(status, b"%d\n" % code)
            os._exit(0)
        os.close(status)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            if fd > 2:
                os.close(fd)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_IGN)  # as the interpreter sets them at start-up
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        import importlib, io
        importlib.reload(voxflow.faults)
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # its global generator too (seeded at import)
        unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))  # standard streams as at start-up
        for fd, name, errors in ((1, "stdout", "strict"), (2, "stderr", "backslashreplace")):
            raw = io.FileIO(fd, "wb", closefd=False)
            stream = io.TextIOWrapper(
                raw if unbuffered else io.BufferedWriter(raw), encoding=sys.stdout.encoding,
                errors=errors, line_buffering=name == "stderr" or os.isatty(fd),
                write_through=unbuffered,
            )
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
        return req["argv"]
sys.argv = serve()
from voxflow.cli.main import main; main()
"""

_zygote: list[tuple[subprocess.Popen[bytes], socket.socket]] = []
_zygote_log: list[IO[bytes]] = []  # its stderr (an unlinked file), for a failure's message


def _stop_zygote() -> None:
    """At exit: the zygote ends when its socket closes (its children are the tests' to end)."""
    for proc, sock in _zygote:
        sock.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _zygote.clear()
    for log in _zygote_log:
        log.close()
    _zygote_log.clear()


def _request(payload: bytes, fds: list[int]) -> None:
    if not _zygote or _zygote[0][0].poll() is not None:
        _stop_zygote()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        _zygote_log.append(tempfile.TemporaryFile())
        proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            stdout=_zygote_log[-1], stderr=_zygote_log[-1],
        )  # fmt: skip
        theirs.close()
        if not _zygote:
            atexit.register(_stop_zygote)
        _zygote[:] = [(proc, ours)]
    socket.send_fds(_zygote[0][1], [payload], fds)


def _stream_fd(spec: int | IO[bytes] | None, pipes: list[int]) -> int:
    """The fd to give the child for ``spec`` (PIPE: a new pipe's write end, its read end kept)."""
    if spec == PIPE:
        r, w = os.pipe()
        pipes.append(r)
        return w
    if spec is None or spec == DEVNULL:
        return os.open(os.devnull, os.O_WRONLY)
    return os.dup(spec if isinstance(spec, int) else spec.fileno())


class _Pipe(asyncio.StreamReaderProtocol):
    """A read pipe's protocol that says when the pipe closed (the writer's end, at EOF)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.closed.set()


async def _reader(fd: int) -> tuple[asyncio.StreamReader, _Pipe]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    pipe = _Pipe(reader)
    await loop.connect_read_pipe(lambda: pipe, os.fdopen(fd, "rb", buffering=0))
    return reader, pipe


class Forked:
    """A voxflow process forked by the zygote (see the module docstring)."""

    def __init__(
        self,
        pid: int,
        status: asyncio.StreamReader,
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader | None,
        pipes: list[_Pipe],
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = stdout
        self.stderr = stderr
        self._status = status
        self._pipes = pipes

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        """Until the process ended and its pipes closed (as ``asyncio.subprocess`` waits)."""
        if self.returncode is None:
            line = await self._status.readline()
            if not line:
                raise AssertionError(f"the keeper of voxflow process {self.pid} died")
            self.returncode = int(line)
        for pipe in self._pipes:  # the status pipe (its keeper exits now) and PIPE streams
            await pipe.closed.wait()
        return self.returncode

    async def communicate(self) -> tuple[bytes | None, bytes | None]:
        async def read(r: asyncio.StreamReader | None) -> bytes | None:
            return None if r is None else await r.read()

        out, err = await asyncio.gather(read(self.stdout), read(self.stderr))
        await self.wait()
        return out, err


async def spawn(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
    cwd: str | Path | None = None,
    prog: str = "-c",
) -> Forked:
    """``python -c "from voxflow.cli.main import main; main()" *args``, forked (module
        docstring). ``stdout``/``stderr``: PIPE, DEVNULL (or None: /dev/null, never the test's own),
        an fd or a binary file. ``env``: the whole environment (default: this process's). ``prog``:
    its ``sys.argv[0]`` (the ``voxflow`` script's path, for a test that ran the script)."""
    out_pipe: list[int] = []
    err_pipe: list[int] = []
    status_r, status_w = os.pipe()
    fds = [_stream_fd(stdout, out_pipe), _stream_fd(stderr, err_pipe), status_w]
    payload = json.dumps(
        {
            "argv": [prog, *args],
            "env": dict(os.environ if env is None else env),
            "cwd": str(cwd or os.getcwd()),
        }
    ).encode()
    try:
        _request(payload, fds)
    finally:
        for fd in fds:
            os.close(fd)
    status, pipe = await _reader(status_r)
    pipes = [pipe]
    streams: list[asyncio.StreamReader | None] = []
    for fd in (*out_pipe, None)[:1] + (*err_pipe, None)[:1]:
        if fd is None:
            streams.append(None)
        else:
            reader, pipe = await _reader(fd)
            streams.append(reader)
            pipes.append(pipe)
    async with asyncio.timeout(60):  # the zygote imports voxflow first (~1-2 s, more if loaded)
        line = await status.readline()
    if not line:
        _zygote_log[-1].seek(0)
        said = _zygote_log[-1].read().decode(errors="replace")[-3000:]
        raise AssertionError(f"the voxflow zygote did not fork the process:\n{said}")
    return Forked(int(line), status, streams[0], streams[1], pipes)


def run(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    prog: str = "-c",
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([prog, *args], capture_output=True, text=True, timeout=timeout)`` for a
    synchronous test, forked (:func:`spawn`); killed and a ``TimeoutError`` after ``timeout``."""

    async def main() -> subprocess.CompletedProcess[str]:
        proc = await spawn(*args, env=env, cwd=cwd, prog=prog, stdout=PIPE, stderr=PIPE)
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode is not None and out is not None and err is not None
        return subprocess.CompletedProcess(
            [prog, *args], proc.returncode, out.decode(), err.decode()
        )

    return asyncio.run(main())
