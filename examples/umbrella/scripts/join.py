"""Join clean sales and weather on the date (inner join)."""

import argparse
import csv


def read(path: str) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["date"]: row for row in csv.DictReader(fh)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", required=True)
    parser.add_argument("--weather", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sales, weather = read(args.sales), read(args.weather)
    days = sorted(set(sales) & set(weather))
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "units", "rain_mm", "temp_c"])
        for day in days:
            writer.writerow([day, sales[day]["units"], weather[day]["rain_mm"], weather[day]["temp_c"]])
    print(f"joined {len(days)} days ({len(sales)} sales, {len(weather)} weather) -> {args.out}")


if __name__ == "__main__":
    main()
