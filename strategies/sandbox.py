"""Run untrusted Python in a contained subprocess (the code-tests checker).

Layers, outermost first:
  1. Namespaces: when `unshare` works here (root, or unprivileged user namespaces), the program
     runs under `unshare --net --pid --fork --kill-child` (plus `--user --map-root-user` when not
     root): a network namespace with no usable interface, and a pid namespace whose processes
     all die with it.
  2. rlimits set in the child before exec: CPU seconds, address space, file size, open files,
     process count (RLIMIT_NPROC is per real user and not enforced for root), no core files.
  3. A Python audit hook installed before the program runs: refuses writes, deletes, renames
     and chmods outside the temporary work directory, every socket operation, process creation
     (fork, exec, spawn, subprocess, os.system) and ctypes. This is a Python-level guard: native
     code can bypass it; it is not a security boundary on its own.
  4. The parent: a wall-clock timeout, an output cap (the process is killed once stdout+stderr
     exceed it), SIGKILL to the whole process group, the work directory deleted afterwards, and
     a minimal environment (HOME/TMPDIR = the work directory, proxies pointed at a closed port).

Without `unshare` there is no network namespace: layer 3 alone blocks sockets (stated in
`SandboxResult.isolation`). This is containment for benchmark and request-time test runs, not a
hardened jail; run the router itself in a container for defence in depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GUARD = r"""
import os, sys
ROOT = os.path.realpath(sys.argv[1])
PROGRAM = sys.argv[2]
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

def _inside(path):
    if isinstance(path, int) or path is None:
        return True
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return p == ROOT or p.startswith(ROOT + os.sep) or p == "/dev/null"

def _deny(what):
    raise PermissionError("sandbox: " + what)

PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
               "os.utime", "shutil.rmtree", "os.chflags", "os.lchown", "os.setxattr",
               "os.removexattr"}
TWO_PATHS = {"os.rename", "os.link", "os.symlink"}
BLOCKED = ("socket.", "subprocess.", "os.fork", "os.forkpty", "os.system", "os.exec",
           "os.posix_spawn", "os.spawn", "os.kill", "os.killpg", "ctypes.", "os.startfile",
           "pty.", "_posixsubprocess")

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS)
        if writing and not _inside(path):
            _deny("write outside the work directory: %r" % (path,))
    elif event in PATH_EVENTS:
        if not _inside(args[0]):
            _deny("%s outside the work directory" % event)
    elif event in TWO_PATHS:
        if not (_inside(args[0]) and _inside(args[1])):
            _deny("%s outside the work directory" % event)
    elif event.startswith(BLOCKED):
        _deny("%s is not allowed" % event)

sys.addaudithook(hook)
del hook
import runpy
sys.argv = [PROGRAM]
runpy.run_path(PROGRAM, run_name="__main__")
"""

VIOLATION_EXIT = 97


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5.0
    cpu_s: int = 5
    memory_mb: int = 512
    file_size_mb: int = 16
    open_files: int = 64
    nproc: int = 64
    output_bytes: int = 64_000


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool = False
    output_truncated: bool = False
    isolation: str = ""  # "namespaces+rlimits+audit" or "rlimits+audit"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_truncated

    @property
    def violation(self) -> str | None:
        """Why the run was contained, if it was: timeout, output, cpu, file_size, memory,
        sandbox (a blocked operation), or None."""
        if self.timed_out:
            return "timeout"
        if self.output_truncated:
            return "output"
        if self.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and "sandbox:" not in self.stderr:
            return "cpu"
        if self.returncode == -signal.SIGXFSZ or "File too large" in self.stderr:
            return "file_size"
        if "MemoryError" in self.stderr:
            return "memory"
        if "sandbox:" in self.stderr:
            return "sandbox"
        return None


def _probe_unshare() -> list[str] | None:
    exe = shutil.which("unshare")
    if exe is None:
        return None
    base = [exe, "--net", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        base[1:1] = ["--user", "--map-root-user"]
    try:
        done = subprocess.run([*base, "true"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return base if done.returncode == 0 else None


class Sandbox:
    def __init__(self, limits: SandboxLimits | None = None, *, python: str | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self.python = python or sys.executable
        self._prefix: list[str] | None = None
        self._probed = False

    def _namespaces(self) -> list[str] | None:
        if not self._probed:
            self._prefix = _probe_unshare()
            self._probed = True
        return self._prefix

    def _preexec(self) -> None:
        lim = self.limits
        mem = lim.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsize = lim.file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (lim.open_files, lim.open_files))
        resource.setrlimit(resource.RLIMIT_NPROC, (lim.nproc, lim.nproc))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    async def run(self, code: str, *, stdin: str = "") -> SandboxResult:
        prefix = await asyncio.to_thread(self._namespaces)
        isolation = ("namespaces+" if prefix else "") + "rlimits+audit"
        work = Path(tempfile.mkdtemp(prefix="ttc-sandbox-"))
        try:
            (work / "main.py").write_text(code)
            (work / "_guard.py").write_text(GUARD)
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(work),
                "TMPDIR": str(work),
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "http_proxy": "http://127.0.0.1:9",
                "https_proxy": "http://127.0.0.1:9",
                "no_proxy": "",
            }
            argv = [
                self.python,
                "-I",
                "-B",
                str(work / "_guard.py"),
                str(work),
                str(work / "main.py"),
            ]
            return await self._spawn([*(prefix or []), *argv], work, env, stdin, isolation)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _spawn(
        self, argv: list[str], work: Path, env: dict[str, str], stdin: str, isolation: str
    ) -> SandboxResult:
        lim = self.limits
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=work,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=self._preexec,
        )
        out = {"stdout": bytearray(), "stderr": bytearray()}
        truncated = False

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        async def pump(name: str, stream: asyncio.StreamReader) -> None:
            nonlocal truncated
            while chunk := await stream.read(65536):
                buf = out[name]
                room = lim.output_bytes - len(out["stdout"]) - len(out["stderr"])
                buf.extend(chunk[: max(room, 0)])
                if len(chunk) > room:
                    truncated = True
                    kill()
                    return

        async def feed() -> None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(stdin.encode())
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

        assert proc.stdout is not None and proc.stderr is not None
        timed_out = False
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    feed(), pump("stdout", proc.stdout), pump("stderr", proc.stderr), proc.wait()
                ),
                lim.timeout_s,
            )
        except TimeoutError:
            timed_out = True
        finally:
            kill()
            await proc.wait()
        return SandboxResult(
            returncode=proc.returncode,
            stdout=out["stdout"].decode(errors="replace"),
            stderr=out["stderr"].decode(errors="replace"),
            wall_s=time.monotonic() - started,
            timed_out=timed_out,
            output_truncated=truncated,
            isolation=isolation,
        )
