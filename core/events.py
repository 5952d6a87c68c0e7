"""The events of a training run: the contract between the trainer and everything that reads a run.

The trainer emits them through its `on_event` callback; the CLI prints them and appends them to
`runs/<id>/events.jsonl` (one JSON object a line, a `time` added); the dashboard reads them back.
On disk they stay plain dicts, so old runs keep loading; these functions are the one place that
builds them and the one place that reads progress out of them.

    status  the run's state: running (with its shape: epochs, steps per epoch, ...), stopped, done,
            failed, diverged
    step    a curve point: loss averaged over the window since the last one, lr, images/s
    log     the tutorial's printed running loss, every `log_interval` mini-batches
    epoch   test accuracy after an epoch (emitted after that epoch's checkpoint is written)
"""
from __future__ import annotations

from dataclasses import dataclass

STATUS, STEP, LOG, EPOCH = "status", "step", "log", "epoch"
FINAL_STATES = ("done", "stopped", "failed", "diverged")
ACTIVE_STATES = ("running", "starting")  # a trainer is (or is about to be) at work: no second launch, live views


def status(state: str, **details) -> dict:
    return {"type": STATUS, "status": state, **details}


def step(*, epoch: int, step: int, steps_per_epoch: int, batch_size: int, loss: float, lr: float,
         images_per_s: float, train_seconds: float) -> dict:
    global_step = (epoch - 1) * steps_per_epoch + step
    return {"type": STEP, "epoch": epoch, "step": step, "global_step": global_step,
            "images_seen": global_step * batch_size, "loss": loss, "lr": lr, "images_per_s": images_per_s,
            "train_seconds": train_seconds}


def log(*, epoch: int, step: int, loss: float) -> dict:
    return {"type": LOG, "epoch": epoch, "step": step, "loss": loss}


def epoch_end(*, epoch: int, test_accuracy: float, train_seconds: float, val_accuracy: float | None = None,
              val_loss: float | None = None) -> dict:
    validation = {} if val_accuracy is None else {"val_accuracy": val_accuracy, "val_loss": val_loss}
    return {"type": EPOCH, "epoch": epoch, "test_accuracy": test_accuracy, "train_seconds": train_seconds,
            **validation}


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e.get("type") == kind]


def last_status(events: list[dict]) -> dict:
    return next((e for e in reversed(events) if e.get("type") == STATUS), {})


@dataclass(frozen=True)
class Progress:
    """Where a run stands, from its events alone."""
    epoch: int  # the epoch being trained (1-based), or the last one
    epochs: int  # 0 until the trainer has reported its shape
    step: int  # within the epoch
    steps_per_epoch: int
    done_steps: int
    images_per_s: float | None
    train_seconds: float | None
    batch_size: int  # images per step, as the steps report them (0 before the first)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def fraction(self) -> float:
        return min(self.done_steps / self.total_steps, 1.0) if self.total_steps else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Training time left at the last reported speed; None before the first step."""
        if not self.images_per_s or not self.total_steps:
            return None
        return max(self.total_steps - self.done_steps, 0) * self.batch_size / self.images_per_s


def progress(events: list[dict]) -> Progress:
    """The last `running` status gives the run's shape (a resumed run reports it again); the last
    step event how far it got. Reads from the end, so a long run costs no more than a short one."""
    shape = next((e for e in reversed(events) if e.get("type") == STATUS and e.get("status") == "running"), {})
    last = next((e for e in reversed(events) if e.get("type") == STEP), None)
    if last is None:  # nothing trained yet in this process: where the run (re)started
        epoch, step_, done = shape.get("epoch", 0) + 1, shape.get("step", 0), \
            shape.get("epoch", 0) * shape.get("steps_per_epoch", 0) + shape.get("step", 0)
        return Progress(epoch, shape.get("epochs", 0), step_, shape.get("steps_per_epoch", 0), done, None, None, 0)
    return Progress(last["epoch"], shape.get("epochs", 0), last["step"], shape.get("steps_per_epoch", 0),
                    last["global_step"], last["images_per_s"], last["train_seconds"],
                    round(last["images_seen"] / last["global_step"]))


def curves(events: list[dict]) -> dict[str, list]:
    """Chart-ready columns from a run's events: per reported step, and per epoch."""
    steps, epochs = of_type(events, STEP), of_type(events, EPOCH)
    return {"global_step": [e["global_step"] for e in steps], "images_seen": [e["images_seen"] for e in steps],
            "loss": [e["loss"] for e in steps], "lr": [e["lr"] for e in steps],
            "images_per_s": [e["images_per_s"] for e in steps],
            "epoch": [e["epoch"] for e in epochs], "test_accuracy": [e["test_accuracy"] for e in epochs],
            # None for epochs (or runs) without a validation split
            "val_accuracy": [e.get("val_accuracy") for e in epochs], "val_loss": [e.get("val_loss") for e in epochs]}
