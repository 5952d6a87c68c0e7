"""Regenerate the shipped default model (models/default.pth) and its model card (models/default.json).

    python scripts/make_default_model.py [--preset cpu-best] [--data-dir data] [extra train flags]

Trains with our own CLI on CIFAR-10, then copies the run's model.pth and writes the card from the
run's own config.json and metrics.json, so the card can only say what actually happened.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-best")
    parser.add_argument("--data-dir", default="data")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "default"
        command = ["python", "-m", "core", "train", "--preset", args.preset, "--data-dir", args.data_dir,
                   "--run-dir", str(run_dir), "--no-download", "--no-progress", *extra]
        subprocess.run([sys.executable, *command[1:]], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        config = json.loads((run_dir / "config.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        out = ROOT / "models"
        out.mkdir(exist_ok=True)
        shutil.copyfile(run_dir / "model.pth", out / "default.pth")
    shown = [a if a != str(run_dir) else "runs/default" for a in command]
    card = {
        "name": f"{config['train']['model']} ({args.preset} preset)",
        "model": config["train"]["model"],
        "command": " ".join(shown),
        "data": config["source"].replace(str(ROOT) + "/", ""),
        "classes": config["classes"],
        "train": config["train"],
        "epochs": config["train"]["epochs"],
        "test_accuracy": metrics["accuracy"],
        "per_class_accuracy": metrics["per_class"],
        "test_images": metrics["total"],
        "train_seconds": round(metrics["train_seconds"], 1),
        "device": config["device"],
        "date": dt.date.today().isoformat(),
        "regenerate": "python scripts/make_default_model.py --preset " + args.preset,
    }
    (out / "default.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"models/default.pth: {100 * metrics['accuracy']:.2f} % test accuracy")


if __name__ == "__main__":
    main()
