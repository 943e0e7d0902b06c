"""Fit units ~ a + b*rain_mm + c*temp_c by least squares (normal equations, stdlib only)."""

import argparse
import csv
import json

FEATURES = ["rain_mm", "temp_c"]


def solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting for a small square system."""
    size = len(vector)
    rows = [matrix[i][:] + [vector[i]] for i in range(size)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if abs(rows[col][col]) < 1e-12:
            raise SystemExit("train: the data does not determine a model (singular system)")
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    solution = [0.0] * size
    for r in range(size - 1, -1, -1):
        solution[r] = (rows[r][size] - sum(rows[r][c] * solution[c] for c in range(r + 1, size))) / rows[r][r]
    return solution


def fit(xs: list[list[float]], ys: list[float]) -> tuple[list[float], float]:
    design = [[1.0, *x] for x in xs]
    width = len(design[0])
    xtx = [[sum(row[i] * row[j] for row in design) for j in range(width)] for i in range(width)]
    xty = [sum(row[i] * y for row, y in zip(design, ys)) for i in range(width)]
    coef = solve(xtx, xty)
    mean = sum(ys) / len(ys)
    residual = sum((y - sum(c * v for c, v in zip(coef, row))) ** 2 for row, y in zip(design, ys))
    total = sum((y - mean) ** 2 for y in ys) or 1.0
    return coef, 1 - residual / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--in", dest="source", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.source, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if len(rows) < 10:
        raise SystemExit(f"train: only {len(rows)} rows; need at least 10")
    coef, r2 = fit([[float(r[f]) for f in FEATURES] for r in rows], [float(r["units"]) for r in rows])
    model = {"intercept": coef[0], "coef": dict(zip(FEATURES, coef[1:])), "r2": r2, "rows": len(rows)}
    with open(args.out, "w") as fh:
        json.dump(model, fh, indent=2)
    print(f"trained on {len(rows)} days: r2={r2:.3f} units = {coef[0]:.1f} + {coef[1]:.2f}*rain {coef[2]:+.2f}*temp")


if __name__ == "__main__":
    main()
