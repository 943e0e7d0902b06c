"""A flaky extract: fails while GITFLOWD_ATTEMPT <= --fail-attempts, then writes its data."""

import argparse
import json
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-attempts", type=int, default=1)
    args = parser.parse_args()
    attempt = int(os.environ.get("GITFLOWD_ATTEMPT", "1"))
    if attempt <= args.fail_attempts:
        print(f"extract: source unavailable on attempt {attempt} (HTTP 503)", file=sys.stderr)
        sys.exit(1)
    workspace = os.environ.get("GITFLOWD_WORKSPACE", ".")
    rows = [{"region": region, "orders": 100 + 7 * index} for index, region in enumerate(["north", "south", "east", "west"])]
    with open(os.path.join(workspace, "extract.json"), "w") as fh:
        json.dump(rows, fh)
    print(f"extract: {len(rows)} rows on attempt {attempt}")


if __name__ == "__main__":
    main()
