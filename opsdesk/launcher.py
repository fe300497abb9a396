"""Entry point of the `opsdesk` command.

`opsdesk agent` runs on customer servers: it must not pay for the server's imports (web
framework, ORM), so it is dispatched here before anything else is loaded.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        from opsdesk.agent.main import main as agent_main

        sys.exit(agent_main(sys.argv[2:]))
    from opsdesk.cli import main as cli_main

    cli_main()
