"""`opsdesk agent`: argument parsing kept to the standard library so the agent stays small."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from opsdesk.agent.runner import Agent, AgentConfig
from opsdesk.agent.system_state import WatchConfig
from opsdesk.agent.transport import InsecureServer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="opsdesk agent", description="Collect host metrics and push them to opsdesk."
    )
    p.add_argument("--server", required=True, help="opsdesk server URL, e.g. https://ops.example.com")
    p.add_argument(
        "--token", default=os.environ.get("OPSDESK_AGENT_TOKEN"), help="agent token (or OPSDESK_AGENT_TOKEN)"
    )
    p.add_argument("--token-file", type=Path, help="read the agent token from this file")
    p.add_argument("--interval", type=float, default=15.0, help="seconds between collections (default 15)")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/opsdesk-agent"), help="buffer and state")
    p.add_argument("--buffer-mb", type=float, default=64, help="disk buffer bound in MiB (default 64)")
    p.add_argument("--watch-process", action="append", default=[], help="process name to watch (repeatable)")
    p.add_argument("--passwd-file", type=Path, default=Path("/etc/passwd"))
    p.add_argument("--shadow-file", type=Path, default=Path("/etc/shadow"))
    p.add_argument("--ca-file", help="CA bundle for a server with a private certificate")
    p.add_argument(
        "--scripts-dir",
        type=Path,
        default=Path(os.environ.get("OPSDESK_AGENT_SCRIPTS_DIR", "/etc/opsdesk/scripts")),
        help="the only directory script checks run programs from (default /etc/opsdesk/scripts)",
    )
    p.add_argument(
        "--log-root",
        type=Path,
        action="append",
        default=[],
        help="directory log checks may read, with its subdirectories (repeatable; default /var/log)",
    )
    p.add_argument("--once", action="store_true", help="collect and send once, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    token = args.token
    if args.token_file:
        token = args.token_file.read_text().strip()
    if not token:
        print(
            "error: an agent token is needed (--token, --token-file or OPSDESK_AGENT_TOKEN)", file=sys.stderr
        )
        return 2
    if args.interval < 1:
        print("error: --interval must be at least 1 second", file=sys.stderr)
        return 2
    try:
        agent = Agent(
            AgentConfig(
                server=args.server,
                token=token,
                state_dir=args.state_dir,
                interval=args.interval,
                buffer_bytes=int(args.buffer_mb * 1024 * 1024),
                watch=WatchConfig(args.passwd_file, args.shadow_file, args.watch_process),
                ca_file=args.ca_file,
                scripts_dir=args.scripts_dir,
                log_roots=tuple(args.log_root) or (Path("/var/log"),),
            )
        )
    except (InsecureServer, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.once:
        agent.cycle()
        return 0 if not agent.spool.pending() else 1
    try:
        agent.run_forever()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
