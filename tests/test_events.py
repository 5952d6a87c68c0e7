"""The event contract: constructors, and progress() as the live view and the CLI's bar read it."""
import pytest
import torch

from core import events
from core.config import TrainConfig
from core.data import DataConfig, load_dataset
from core.events import progress
from core.train import train


def running(epoch=0, step=0, epochs=2, steps_per_epoch=10):
    return events.status("running", epoch=epoch, step=step, epochs=epochs, steps_per_epoch=steps_per_epoch)


def step_event(epoch, step, steps_per_epoch=10, batch_size=4, images_per_s=40.0):
    return events.step(epoch=epoch, step=step, steps_per_epoch=steps_per_epoch, batch_size=batch_size, loss=1.0,
                       lr=0.1, images_per_s=images_per_s, train_seconds=float(step))


def test_nothing_reported_yet_is_no_progress():
    p = progress([])
    assert (p.total_steps, p.done_steps, p.fraction, p.seconds_left, p.images_per_s) == (0, 0, 0.0, None, None)


def test_a_run_that_has_started_but_not_stepped_is_at_its_start():
    p = progress([running(epoch=1, step=3)])  # a resumed run: one epoch and three steps done before
    assert (p.epoch, p.step, p.done_steps, p.total_steps) == (2, 3, 13, 20)
    assert p.fraction == pytest.approx(13 / 20) and p.seconds_left is None


def test_progress_and_time_left_follow_the_last_step():
    evs = [running(), step_event(1, 5), step_event(1, 10), step_event(2, 5, images_per_s=20.0)]
    p = progress(evs)
    assert (p.epoch, p.step, p.done_steps, p.batch_size) == (2, 5, 15, 4)
    assert p.fraction == pytest.approx(0.75)
    assert p.seconds_left == pytest.approx(5 * 4 / 20.0)  # five steps of four images at 20 images/s
    assert p.train_seconds == 5.0


def test_a_resumed_run_takes_its_shape_from_the_last_running_status():
    evs = [running(epochs=2), step_event(1, 10), events.status("stopped", epoch=1), running(1, 0, epochs=4),
           step_event(2, 2)]
    p = progress(evs)
    assert (p.epochs, p.total_steps, p.done_steps) == (4, 40, 12)


def test_a_real_run_ends_at_its_total(tiny_tree):
    dataset = load_dataset(DataConfig(data_dir=str(tiny_tree), download=False))
    seen = []
    train(TrainConfig(epochs=2, batch_size=4, lr=0.01, log_interval=3), dataset, torch.device("cpu"),
          on_event=seen.append)
    p = progress(seen)
    assert p.fraction == 1.0 and p.done_steps == p.total_steps == 2 * 9 and p.seconds_left == 0
    assert [e["type"] for e in seen][0] == events.STATUS
    assert {e["type"] for e in seen} == {events.STATUS, events.STEP, events.LOG, events.EPOCH}
    assert events.curves(seen)["epoch"] == [1, 2]
