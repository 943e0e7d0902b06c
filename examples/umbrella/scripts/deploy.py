"""Deploy a trained model: refuse a poor one, else publish it for the day and print metrics."""

import argparse
import json
import os
import shutil


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--day", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--min-r2", type=float, default=0.5)
    args = parser.parse_args()
    with open(args.model) as fh:
        model = json.load(fh)
    if model["r2"] < args.min_r2:
        raise SystemExit(f"deploy: r2 {model['r2']:.3f} is below {args.min_r2}; keeping the current model")
    os.makedirs(args.dest, exist_ok=True)
    target = os.path.join(args.dest, f"model-{args.day}.json")
    shutil.copyfile(args.model, target)
    shutil.copyfile(args.model, os.path.join(args.dest, "current.json"))
    rain = model["coef"]["rain_mm"]
    print(f"deployed {target}: r2={model['r2']:.3f}, +{rain:.1f} umbrellas per mm of rain, rows={model['rows']}")


if __name__ == "__main__":
    main()
