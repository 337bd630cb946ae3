"""Stopping processes of an earlier panel run that the ledger knows: ours only, proven.

A ledger row names a pid, its create time and the token on its command line; a process is
signalled only when all three still match (`probe.is_ours`). Such a process is not our child:
its exit is awaited through a pidfd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from app.core import probe, waiting
from app.core.model import ServiceRecord

KILL_WAIT_S = 5.0  # after SIGKILL: only an uninterruptible (D-state) process takes longer
PORT_FREE_WAIT_S = 2.0


async def reap(record: ServiceRecord, grace: float) -> bool:
    """Stop the process of a ledger row if it is provably ours; returns whether it was."""
    if record.pid is None or record.create_time is None:
        return False
    if not probe.is_ours(record.pid, record.create_time, record.cmdline_token):
        return False
    stopped = await stop_unparented(record.pid, grace)
    if record.port:  # the fork server has a ledger row too, and no port
        await waiting.until(lambda: probe.can_bind(record.port), PORT_FREE_WAIT_S)
    return stopped


async def stop_unparented(pid: int, grace: float) -> bool:
    """SIGTERM, wait for exit through a pidfd, SIGKILL after `grace`: for a process we are not
    the parent of (checked to be ours by the caller)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        signal_group(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(gone), grace)
        except TimeoutError:
            signal_group(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(gone), KILL_WAIT_S)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return True


def signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Our services lead their own group; anything else gets only the single signal.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
