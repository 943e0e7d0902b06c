"""Clean a raw CSV: drop rows whose numeric columns are missing, unparsable or negative."""

import argparse
import csv

NUMERIC = {"sales": ["units"], "weather": ["rain_mm", "temp_c"]}
NON_NEGATIVE = {"units", "rain_mm"}


def usable(row: dict, columns: list[str]) -> bool:
    try:
        values = {name: float(row[name]) for name in columns}
    except (KeyError, ValueError):
        return False
    return all(values[name] >= 0 for name in columns if name in NON_NEGATIVE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True, choices=sorted(NUMERIC))
    parser.add_argument("--in", dest="source", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.source, newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    kept = {row["date"]: row for row in rows if usable(row, NUMERIC[args.kind])}
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept[day] for day in sorted(kept))
    print(f"{args.kind}: kept {len(kept)} of {len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
