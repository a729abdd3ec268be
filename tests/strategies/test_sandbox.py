"""The code sandbox contains hostile programs and says what stopped them."""

from pathlib import Path

import pytest

from strategies.sandbox import Sandbox, SandboxLimits


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(timeout_s=3.0, cpu_s=2, memory_mb=256, output_bytes=10_000))


async def test_plain_program_runs(sandbox: Sandbox) -> None:
    result = await sandbox.run("print(sum(range(10)))")
    assert result.ok and result.stdout == "45\n" and result.violation is None


async def test_infinite_loop_is_stopped(sandbox: Sandbox) -> None:
    result = await sandbox.run("while True:\n    pass")
    assert not result.ok and result.violation in {"timeout", "cpu"}
    assert result.wall_s < 6


async def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    result = await sandbox.run("import os\nwhile True:\n    os.fork()")
    assert not result.ok and result.violation == "sandbox"
    assert "os.fork is not allowed" in result.stderr


async def test_fork_through_subprocess_is_refused(sandbox: Sandbox) -> None:
    result = await sandbox.run("import subprocess\nsubprocess.run(['true'])")
    assert not result.ok and result.violation == "sandbox"


async def test_large_allocation_fails(sandbox: Sandbox) -> None:
    result = await sandbox.run("x = bytearray(2 * 1024**3)\nprint('allocated')")
    assert not result.ok and result.violation == "memory" and "allocated" not in result.stdout


async def test_network_is_unreachable(sandbox: Sandbox) -> None:
    code = "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 6379))\nprint('connected')"
    result = await sandbox.run(code)
    assert not result.ok and "connected" not in result.stdout
    assert result.violation == "sandbox"


async def test_network_namespace_when_available(sandbox: Sandbox) -> None:
    result = await sandbox.run("print('hi')")
    if not result.isolation.startswith("namespaces"):
        pytest.skip("unshare (network/pid namespaces) is not permitted on this machine")
    # the program's own network namespace has only the loopback device (and it is down), so
    # even code that got past the audit hook would have no route out
    code = "print([l.split(':')[0].strip() for l in open('/proc/self/net/dev').readlines()[2:]])"
    listed = await sandbox.run(code)
    assert listed.ok and listed.stdout.strip() == "['lo']"
    host = Path("/proc/self/net/dev").read_text().splitlines()[2:]  # noqa: ASYNC240
    assert len(host) > 1  # the router's own namespace does have other devices


async def test_writing_outside_the_work_directory_is_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    target = tmp_path / "escape.txt"
    result = await sandbox.run(f"open({str(target)!r}, 'w').write('x')\nprint('wrote')")
    assert not target.exists() and result.violation == "sandbox"
    inside = await sandbox.run("open('ok.txt', 'w').write('x')\nprint(open('ok.txt').read())")
    assert inside.ok and inside.stdout == "x\n"


async def test_removing_files_outside_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("keep")
    result = await sandbox.run(f"import os\nos.remove({str(victim)!r})")
    assert victim.exists() and result.violation == "sandbox"


async def test_huge_output_is_capped(sandbox: Sandbox) -> None:
    result = await sandbox.run("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)")
    assert not result.ok and result.violation == "output"
    assert len(result.stdout) + len(result.stderr) <= 10_000


async def test_work_directory_is_removed(sandbox: Sandbox) -> None:
    result = await sandbox.run("import os\nprint(os.getcwd())")
    assert result.ok and not Path(result.stdout.strip()).exists()  # noqa: ASYNC240
