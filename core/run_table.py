"""The Runs table's rows (and Overview's): what a run is, read from its files; the Run itself only reads them."""
from __future__ import annotations

from core.events import EPOCH, of_type
from core.runs import Run


def row(run: Run) -> dict:
    """One row of the Runs table: settings, state, epochs done, best accuracy, training time, start."""
    events = run.events()
    try:
        config = run.config()
    except (FileNotFoundError, ValueError):
        config = {}
    train = config.get("train", {})
    epochs = of_type(events, EPOCH)
    metrics = run.metrics() or {}
    accuracies = [e["test_accuracy"] for e in epochs] + ([metrics["accuracy"]] if "accuracy" in metrics else [])
    epochs_done = max([e["epoch"] for e in epochs], default=0)
    seconds = max([e.get("train_seconds", 0) for e in events if "train_seconds" in e], default=0.0)
    started = config.get("created") or run.launch().get("time") or run.path.stat().st_mtime
    return {"id": run.id, "state": run.state(events), "preset": config.get("preset"),
            "model": train.get("model"), "width": train.get("width"), "batch_size": train.get("batch_size"),
            "lr": train.get("lr"), "epochs": train.get("epochs"), "epochs_done": epochs_done,
            "best_accuracy": max(accuracies, default=None),
            "train_seconds": seconds, "device": config.get("device"), "started": started}
