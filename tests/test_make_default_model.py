"""scripts/make_default_model.py: a card says the command its run was really trained by."""
from scripts.make_default_model import RECIPE, trained_with


def test_a_card_from_a_run_names_the_command_the_run_recorded_without_its_folder():
    config = {"command": ["/x/core/__main__.py", "train", "--preset", "gpu", "--epochs", "36", "--run-dir",
                          "runs/cand", "--no-progress"]}
    assert trained_with(config, ["python", "-m", "core", "train", *RECIPE]) == \
        ["python", "-m", "core", "train", "--preset", "gpu", "--epochs", "36", "--no-progress"]
    config["command"] = ["/x/core/__main__.py", "train", "--run-dir=runs/cand", "--epochs", "2"]
    assert trained_with(config, []) == ["python", "-m", "core", "train", "--epochs", "2"]


def test_a_run_that_recorded_no_command_keeps_the_one_given():
    shown = ["python", "-m", "core", "train", *RECIPE]
    assert trained_with({}, shown) == shown
