"""Fetch (generate) raw daily weather for the days up to --day, with a few sensor glitches."""

import argparse
import csv
from datetime import date

from fakeworld import days_until, weather


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--day", required=True, type=date.fromisoformat)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "rain_mm", "temp_c"])
        for index, day in enumerate(days_until(args.day, args.days)):
            rain, temp = weather(day)
            writer.writerow([day.isoformat(), "n/a" if index % 23 == 7 else rain, temp])
    print(f"fetched {args.days} days of weather up to {args.day} -> {args.out}")


if __name__ == "__main__":
    main()
