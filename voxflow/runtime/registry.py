"""Loading flows from files and directories, routing calls to them, hot reload with pinning.

A :class:`FlowRegistry` holds the current :class:`FlowVersion` of every flow. Calls pin the
version they started on (they keep a reference to its frozen ``Flow``), so a reload only affects
new calls. ``.flow`` files are compiled with ``voxflow.compiler.compile_flow``; ``.json`` files are
compiled IR (``Flow.model_dump_json()``). A file that no longer compiles keeps its previous
version loaded and its diagnostics are reported through :attr:`FlowRegistry.problems`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from voxflow.compiler import compile_flow
from voxflow.errors import ConfigError, FlowCheckError, FlowError
from voxflow.ir.models import Flow
from voxflow.sourcefile import read_problem, read_regular_bytes, walk_files
from voxflow.spec.dtmf import is_pattern, number_matches, specificity

__all__ = [
    "FlowRegistry",
    "FlowSource",
    "FlowVersion",
    "ReleasedFlows",
    "Router",
    "default_compiler",
    "read_flow_text",
    "runnable",
    "takes_inbound",
]

log = logging.getLogger(__name__)

Compiler = Callable[[str, str], Flow]


def default_compiler(text: str, path: str) -> Flow:
    """Compile ``.flow`` source with the language front door, or load ``.json`` IR."""
    if path.endswith(".json"):
        try:
            return Flow.model_validate_json(text)
        except ValidationError as exc:
            msg = f"{path}: not a valid compiled flow: {exc.error_count()} error(s)"
            raise FlowError(msg) from exc
    result = compile_flow(text, path)  # a CompileResult: the flow and the diagnostics
    if result.flow is None or not result.ok:
        lines = [f"{d.file}:{d.span.line}:{d.span.col}: {d.message}" for d in result.errors]
        raise FlowCheckError("\n".join(lines) or f"{path}: does not compile", result.diagnostics)
    flow: Flow = result.flow
    return flow


def read_flow_text(path: Path) -> str:
    """The text of a flow file; a one-line FlowError naming the file when it cannot be read (not
    a regular file: a FIFO is never opened for reading, a device never read), looks binary or is
    not UTF-8."""
    try:
        data = read_regular_bytes(path)
    except OSError as exc:
        raise FlowError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if b"\0" in data:
        raise FlowError(f"{path}: file looks binary (it contains a NUL byte), not a .flow source")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None


def runnable(fv: FlowVersion) -> bool:
    """A flow that can take a call: it has states (not an empty file or only subflows)."""
    return bool(fv.flow.states)


def takes_inbound(fv: FlowVersion) -> bool:
    """A flow that may answer an inbound call (not ``direction outbound``)."""
    return runnable(fv) and fv.flow.direction != "outbound"


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One loaded version of one flow file."""

    flow: Flow
    path: Path
    version: int
    mtime_ns: int


class FlowRegistry:
    """The flows being served, keyed by flow name."""

    def __init__(self, compiler: Compiler = default_compiler) -> None:
        self._compile = compiler
        self._by_path: dict[Path, FlowVersion] = {}
        self._paths: list[Path] = []
        self.problems: dict[Path, str] = {}
        self._failed_mtime: dict[Path, int] = {}

    @staticmethod
    def expand(
        paths: Iterable[str | Path], on_skip: Callable[[str], None] = log.warning
    ) -> list[Path]:
        """Files named, plus ``*.flow`` files under directories (sorted, hidden ones left out);
        one in a directory that is not a regular file is never read: ``on_skip`` says so."""
        out: list[Path] = []
        for p in map(Path, paths):
            if p.is_dir():
                out += walk_files(p, lambda f: f.suffix == ".flow", on_skip)
            elif p.is_file():
                out.append(p)
            elif p.exists():  # a FIFO, device or socket: say what it is (never read it)
                raise ConfigError(read_problem(p) or f"not a regular file: {p}")
            else:
                raise ConfigError(f"no such flow file or directory: {p}")
        return out

    def load(
        self, paths: Iterable[str | Path], on_skip: Callable[[str], None] = log.warning
    ) -> list[FlowVersion]:
        """Load every flow; raises FlowError listing every file that failed."""
        self._paths = self.expand(paths, on_skip)
        if not self._paths:
            raise ConfigError("no .flow files found")
        errors: list[str] = []
        for p in self._paths:
            try:
                self._load_one(p)
            except FlowError as exc:
                errors.append(str(exc) if str(p) in str(exc) else f"{p}: {exc}")
        if errors:
            raise FlowError("\n".join(errors))
        self._check_names()
        return list(self._by_path.values())

    def _load_one(self, path: Path) -> FlowVersion:
        mtime = path.stat().st_mtime_ns
        flow = self._compile(read_flow_text(path), str(path))
        old = self._by_path.get(path)
        fv = FlowVersion(flow, path, (old.version + 1) if old else 1, mtime)
        self._by_path[path] = fv
        self.problems.pop(path, None)
        return fv

    def _check_names(self) -> None:
        seen: dict[str, Path] = {}
        numbers: dict[str, Path] = {}
        for fv in self._by_path.values():
            if fv.flow.name in seen and seen[fv.flow.name] != fv.path:
                raise FlowError(
                    f"{fv.path}: flow name '{fv.flow.name}' is already used by {seen[fv.flow.name]}"
                )
            seen[fv.flow.name] = fv.path
            for n in fv.flow.answers:
                if n in numbers and numbers[n] != fv.path:
                    raise FlowError(f"{fv.path}: number {n} is already answered by {numbers[n]}")
                numbers[n] = fv.path

    def reload_changed(self) -> list[FlowVersion]:
        """Recompile files whose mtime changed; a failing file keeps its old version and its
        error goes to :attr:`problems`. Returns the versions newly loaded."""
        loaded: list[FlowVersion] = []
        for p in self._paths:
            old = self._by_path.get(p)
            try:
                mtime = p.stat().st_mtime_ns
            except OSError:
                continue
            if old is not None and mtime == old.mtime_ns:
                continue
            if p in self.problems and self._failed_mtime.get(p) == mtime:
                continue
            try:
                fv = self._load_one(p)
                self._check_names()
            except FlowError as exc:
                if old is not None:
                    self._by_path[p] = old
                self.problems[p] = str(exc)
                self._failed_mtime[p] = mtime
                log.warning("%s not reloaded: %s", p, exc)
                continue
            loaded.append(fv)
            log.info("reloaded %s as version %d", p, fv.version)
        return loaded

    def versions(self) -> list[FlowVersion]:
        """Current version of every flow."""
        return list(self._by_path.values())

    def get(self, name: str) -> FlowVersion | None:
        """The current version of the flow called ``name``."""
        return next((fv for fv in self._by_path.values() if fv.flow.name == name), None)


class FlowSource(Protocol):
    """What a :class:`Router` chooses from (:class:`FlowRegistry`, :class:`ReleasedFlows`)."""

    def versions(self) -> list[FlowVersion]:
        """Current version of every flow."""
        ...

    def get(self, name: str) -> FlowVersion | None:
        """The current version of the flow called ``name``."""
        ...


class ReleasedFlows:
    """The cluster's released flows (cluster mode: ``voxflow:current:<flow>``) as a
    :class:`FlowSource`: each released flow by name, else this worker's own version of it (a
    flow nobody released yet). A released flow that is this worker's loaded version keeps its
    :class:`FlowVersion`; another one gets ``path`` ``<released HASH>`` and version 0."""

    def __init__(self, local: FlowRegistry, released: Mapping[str, tuple[str, Flow]]) -> None:
        """``released``: flow name -> (hash, compiled flow)."""
        own = {fv.flow.name: fv for fv in local.versions()}
        merged = dict(own)
        for name, (fhash, flow) in released.items():
            mine = own.get(name)
            if mine is None or mine.flow != flow:
                merged[name] = FlowVersion(flow, Path(f"<released {fhash[:12]}>"), 0, 0)
        self._versions = [merged[n] for n in sorted(merged)]

    def versions(self) -> list[FlowVersion]:
        """The released flows, and this worker's own flows nobody released, by name."""
        return list(self._versions)

    def get(self, name: str) -> FlowVersion | None:
        """The released (else local) version of the flow called ``name``."""
        return next((fv for fv in self._versions if fv.flow.name == name), None)


class Router:
    """Routes a dialed number to the flow that answers it, else the default flow."""

    def __init__(self, registry: FlowSource, default_flow: str | None = None) -> None:
        self.registry = registry
        self.default_flow = default_flow
        if default_flow is not None:
            fv = registry.get(default_flow)
            if fv is None or not runnable(fv):
                names = ", ".join(sorted(v.flow.name for v in registry.versions() if runnable(v)))
                raise ConfigError(
                    f"default flow '{default_flow}' is not loaded (loaded: {names or 'none'})"
                )

    def route(self, called: str) -> FlowVersion | None:
        """The flow version for a new inbound call to ``called`` (None: no flow takes it): a
        literal in some flow's ``answers``, else the most specific pattern (``_1XX``).
        Empty files, subflow libraries and ``direction outbound`` flows never take one."""
        versions = [fv for fv in self.registry.versions() if takes_inbound(fv)]
        for fv in versions:
            if called and called in fv.flow.answers:
                return fv
        matching = [
            (specificity(route), fv)
            for fv in versions
            for route in fv.flow.answers
            if called and is_pattern(route) and number_matches(route, called)
        ]
        if matching:
            return min(matching, key=lambda m: m[0])[1]
        if self.default_flow is not None:
            default = self.registry.get(self.default_flow)
            return default if default is not None and takes_inbound(default) else None
        catch_all = [fv for fv in versions if not fv.flow.answers]
        return catch_all[0] if len(catch_all) == 1 else None
