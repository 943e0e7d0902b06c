"""Fetch (generate) raw umbrella sales for the days up to --day, with a few dirty rows."""

import argparse
import csv
from datetime import date

from fakeworld import days_until, sales


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--day", required=True, type=date.fromisoformat)
    parser.add_argument("--region", default="seoul")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "region", "units"])
        for index, day in enumerate(days_until(args.day, args.days)):
            units = "" if index % 17 == 5 else sales(day, args.region)  # the point of sale lost a few
            writer.writerow([day.isoformat(), args.region, units])
    print(f"fetched {args.days} days of {args.region} sales up to {args.day} -> {args.out}")


if __name__ == "__main__":
    main()
