"""Ids without a syscall each stay unique, within a process and across a fork."""

from __future__ import annotations

import os
import re

from router.ids import new_id


def test_ids_are_unique_and_uuid_shaped() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_child_draws_a_new_prefix() -> None:
    parent = new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:16] != parent[:16]
