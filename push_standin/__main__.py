"""``python -m push_standin [--port 12112]``: the push stand-in on its own."""

from __future__ import annotations

import argparse
import time

from . import PushStandIn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12112)
    args = parser.parse_args()
    with PushStandIn(args.host, args.port) as standin:
        print(f"push stand-in on {standin.url}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
