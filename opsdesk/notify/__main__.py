"""Run an outbox worker alone: ``python -m opsdesk.notify [--config FILE] [options]``.

For a deployment that sends from its own process (and for the crash test, which kills one).
SIGTERM and SIGINT stop it; rows it had in flight are taken by the next worker once their
lease runs out (see opsdesk.notify.outbox for why that loses nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from opsdesk.core.config import load_settings
from opsdesk.core.runtime import build_runtime
from opsdesk.notify.outbox import OutboxWorker, Policy


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m opsdesk.notify", description=__doc__)
    d = Policy()
    p.add_argument("--config", default=None, help="opsdesk config file (default: $OPSDESK_CONFIG)")
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument(
        "--lease", type=float, default=d.lease, help="seconds before a dead worker's rows are taken"
    )
    p.add_argument("--send-timeout", type=float, default=d.send_timeout)
    p.add_argument("--max-attempts", type=int, default=d.max_attempts)
    p.add_argument("--base-backoff", type=float, default=d.base_backoff)
    p.add_argument("--poll", type=float, default=d.poll)
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    rt = build_runtime(load_settings(args.config))
    policy = Policy(
        max_attempts=args.max_attempts,
        base_backoff=args.base_backoff,
        lease=args.lease,
        send_timeout=min(args.send_timeout, args.lease),
        batch=args.batch,
        concurrency=args.concurrency,
        poll=args.poll,
    )
    worker = OutboxWorker(rt.sessions, policy)
    task = asyncio.create_task(worker.serve())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    logging.getLogger("opsdesk.notify").info("outbox worker %s started", worker.worker_id)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    rt.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    main()
