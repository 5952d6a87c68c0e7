"""`python -m core train|evaluate|predict|report|export|teach`: the tutorial from the command line.

The dashboard launches exactly this command for its runs, so the two never drift apart.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from dataclasses import asdict, fields
from pathlib import Path

from core import events, ood, snapshots
from core.checkpoints import check_fits, load_model
from core.config import PRESETS, ConfigError, TrainConfig, with_overrides
from core.data import DataConfig, DataError, image_files, load_dataset
from core.devices import choose_device, device_name, for_this_device, slow_bf16
from core.distributed import device_for, join, leave
from core.evaluate import tutorial_lines
from core.evaluations import SHIPPED, folder_for, remembered_evaluate
from core.export import FORMATS
from core.images import FRAMING, FRAMINGS, ImageError, load_for_model
from core.interpret import top_k
from core.replay import replay, replay_lines
from core.runs import Run, new_run_id
from core.train import Diverged, train


def flag_help(f) -> str:
    """A setting's help on the command line: its own text, its choices, and its default."""
    choices = f" ({', '.join(f.metadata['choices'])})" if f.metadata["choices"] else ""
    return f"{f.metadata['help']}{choices}; default: the preset's"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="The PyTorch CIFAR-10 tutorial, fast.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_command(sub)
    _model_commands(sub)
    return parser


def _data_flags(p) -> None:
    """Where the CIFAR-10 data is, for the commands that read it as training does (train, evaluate)."""
    p.add_argument("--data-dir", help="data directory (default: $CIFAR_DATA, else ./data)")
    p.add_argument("--no-download", action="store_true", help="never try to download CIFAR-10")


def _train_command(sub) -> None:
    t = sub.add_parser("train", help="train a model into a run directory")
    t.add_argument("--preset", choices=sorted(PRESETS), default="tutorial",
                   help="named settings to start from (tutorial: the tutorial exactly); the flags below override them")
    for f in fields(TrainConfig):  # one flag per setting, from the setting itself (core/config.py)
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            t.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=flag_help(f))
        else:
            t.add_argument(flag, type={"int": int, "float": float, "str": str}[f.type], help=flag_help(f))
    _data_flags(t)
    where = t.add_mutually_exclusive_group()
    where.add_argument("--run-dir", help="new run directory (default: runs/<timestamp>)")
    where.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run where it left off")
    t.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def _model_commands(sub) -> None:
    """The commands that use a trained model: evaluate, predict, report, export, teach."""
    e = sub.add_parser("evaluate", help="overall and per-class test accuracy of a run or model.pth")
    e.add_argument("target", help="a run directory or a .pth file")
    _data_flags(e)
    device = next(f for f in fields(TrainConfig) if f.name == "device")  # the Train form's and train's own words
    e.add_argument("--device", default=device.default, help=device.metadata["help"])
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--fresh", action="store_true",
                   help="evaluate afresh: neither read nor remember the test-set logits (core/evaluations.py)")

    p = sub.add_parser("predict", help="top classes for image files (or folders of them)")
    p.add_argument("model", help="a model.pth (or a run directory)")
    p.add_argument("images", nargs="+", help="image files, or folders: every image directly in them")
    p.add_argument("--top", type=int, default=3, help="how many classes to show a picture (default: 3)")
    p.add_argument("--framing", choices=FRAMINGS, default=FRAMING,
                   help="what of a non-square picture the network sees: its centre square (crop) or all of it, "
                        f"padded to a square (whole); default: {FRAMING}")
    p.add_argument("--replay", action="store_true",
                   help="the learning replay: the top class and its probability at each of the model's weight "
                        "snapshots, from the initial weights to the trained model")

    r = sub.add_parser("report", help="a finished run as one self-contained HTML file (opens offline)")
    r.add_argument("run", help="a run directory")
    r.add_argument("-o", "--output", default="report.html", help="the HTML file to write (default: report.html)")
    r.add_argument("--data-dir", help="the test set for the image sections (default: the run's own data)")

    x = sub.add_parser("export", help="a model as one TorchScript or ONNX file that runs without this project")
    x.add_argument("model", help="a run directory or a .pth file")
    x.add_argument("--format", choices=FORMATS,
                   help="torchscript (LibTorch: Python, C++, Java) or onnx (onnxruntime and other runtimes); "
                        "default: from the output's suffix (.onnx: onnx), else torchscript")
    x.add_argument("-o", "--output", help="the file to write (default: the run's or file's name + .pt or .onnx)")

    tc = sub.add_parser("teach", help="teach a model a new class from 10-200 photos of it (an 11-class run)")
    tc.add_argument("base", help="the model to teach: a run directory or a .pth file (models/default.pth)")
    tc.add_argument("photos", nargs="+", metavar="PHOTO_OR_FOLDER", help="photos of the new class, or folders of them")
    tc.add_argument("--class-name", required=True, help="the new class's name (not one the model already has)")
    tc.add_argument("--run-dir", help="the new run directory (default: runs/<timestamp>)")
    tc.add_argument("--no-mix", action="store_true",
                    help="train on the photos alone, without stored CIFAR-10 features: the ten are forgotten")
    tc.add_argument("--framing", choices=FRAMINGS, default=FRAMING, help="what of a non-square photo is used")
    tc.add_argument("--data-dir", help="the data for the mix and the meter (default: the base run's, else ./data)")


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to stop between steps; a second SIGINT still interrupts."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


class _Printer:
    """Prints the tutorial's lines (and keeps them in train.log); a progress bar on a terminal."""

    def __init__(self, run: Run, progress: bool, enabled: bool = True):
        self.run, self.bar, self.progress, self.enabled = run, None, progress, enabled
        self.events: list[dict] = []  # this process's, for events.progress()

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)
        self.run.log(text)

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        self.run.append_event(event)
        self.events.append(event)
        kind = event["type"]
        if kind == events.STATUS and event["status"] == "running" and self.progress:
            from tqdm import tqdm

            where = events.progress(self.events)
            self.bar = tqdm(total=where.total_steps, initial=where.done_steps, unit="batch", dynamic_ncols=True,
                            file=sys.stderr)
        elif kind == events.STEP and self.bar is not None:
            where = events.progress(self.events)
            self.bar.update(where.done_steps - self.bar.n)
            self.bar.set_postfix(loss=f"{event['loss']:.3f}", img_s=f"{where.images_per_s:.0f}")
        elif kind == events.LOG:
            self.line(f"[{event['epoch']}, {event['step']:5d}] loss: {event['loss']:.3f}")
        elif kind == events.EPOCH:
            validation = f", validation {100 * event['val_accuracy']:.2f} %" if "val_accuracy" in event else ""
            self.line(f"Epoch {event['epoch']}: test accuracy {100 * event['test_accuracy']:.2f} %{validation}")

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_train(args) -> int:
    stop = _StopFlag()  # before the data loads, so an early Stop is honoured too
    if args.resume:
        run = Run(args.resume)
        stored = run.config()
        config = with_overrides(TrainConfig.from_dict(stored["train"]), epochs=args.epochs, device=args.device)
        data_config = DataConfig(**stored["data"])
        checkpoint = run.load_checkpoint()
        run.remove_temporaries()
    else:
        config = with_overrides(PRESETS[args.preset], **{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        data_config = DataConfig(data_dir=args.data_dir, download=not args.no_download)
        run, checkpoint = Run(args.run_dir or Path("runs") / new_run_id()), None
    world = join(config.device)  # under torchrun: this process's rank; alone: rank 0 of 1
    clean, notes = False, []
    try:
        if config.batch_size < world.size:
            raise ConfigError({"batch_size": f"must be at least the number of processes ({world.size}): "
                                             "the global batch is shared out among them"})
        device = device_for(world, choose_device(config.device))
        if checkpoint is None and args.bf16 is None and slow_bf16(config, device):  # the preset's bf16, not a flag
            config = for_this_device(config, device)
            notes.append("note: this CPU only emulates bf16 (no AVX-512 BF16 or AMX), so the preset's bf16 autocast "
                         "is off: fp32 is several times faster here (--bf16 forces it)")
        dataset = load_dataset(data_config)
        if checkpoint is not None and checkpoint["epoch"] >= config.epochs:
            raise ConfigError({"epochs": f"the run already finished {checkpoint['epoch']} epochs; "
                                         "pass a larger --epochs to train further"})
        if checkpoint is None and world.is_main:
            data_config = DataConfig(**{**asdict(data_config), "data_dir": str(dataset.root.resolve())})
            run.create({"train": config.to_dict(), "data": asdict(data_config), "preset": args.preset,
                        "classes": list(dataset.classes), "source": dataset.description,
                        "device": device_name(device), "world_size": world.size, "command": sys.argv,
                        "created": time.time()})
        status = _train_and_report(args, run, config, data_config, dataset, device, world, stop, checkpoint, notes)
        clean = True
        return status
    finally:
        leave(world, clean)
        run.close()


def _train_and_report(args, run, config, data_config, dataset, device, world, stop, checkpoint, notes) -> int:
    """Rank 0 prints, writes events, checkpoints and metrics; other ranks only train."""
    printer = _Printer(run, progress=sys.stderr.isatty() and not args.no_progress, enabled=world.is_main)
    processes = f" x {world.size} processes" if world.distributed else ""
    printer.line(f"Training on {device_name(device)}{processes} with {dataset.description} -> {run.path}")
    for note in notes:
        printer.line(note)
    if slow_bf16(config, device):
        printer.line("note: this CPU has no native bf16, so bf16 autocast is emulated and slower than fp32 here; "
                     "add --no-bf16")
    try:
        result = train(config, dataset, device, data_config=data_config, on_event=printer, should_stop=stop,
                       save_checkpoint=run.save_checkpoint if world.is_main else lambda checkpoint: None,
                       resume=checkpoint, world=world)
        printer.close()
        if result.status == "stopped":
            printer.line(f"Stopped; resume with: python -m core train --resume {run.path}")
            printer(events.status("stopped", epoch=result.epochs_done))
            return 0
        printer.line("Finished Training")
        if world.is_main:
            # the last epoch has just evaluated these weights (with TTA, several passes); one always ran
            # here, since cmd_train refuses to resume a run that has finished its epochs
            metrics = result.evaluation
            run.write_metrics({**metrics.to_dict(dataset.classes), "train_seconds": result.train_seconds,
                               "epochs": config.epochs, "world_size": world.size, **result.calibration})
            for line in tutorial_lines(metrics, dataset.classes):
                printer.line(line)
            if result.calibration:
                c = result.calibration
                printer.line(f"Calibration: temperature {c['temperature']:.2f} (fitted on the {config.val_images} "
                             f"validation images); test set's expected calibration error "
                             f"{100 * c['test_ece']:.1f} % -> {100 * c['test_ece_calibrated']:.1f} %")
                printer.line(f"None of the {ood.in_words(len(dataset.classes))}: an image whose {c['ood_score']} "
                             f"score is below {c['ood_threshold']:.3f} (which {100 * ood.KEEP:.0f} % of the "
                             "validation images pass) is flagged as unlike every class")
            printer(events.status("done", test_accuracy=metrics.accuracy, train_seconds=result.train_seconds))
        return 0
    except BaseException as exc:
        printer.close()
        status = "diverged" if isinstance(exc, Diverged) else "failed"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if world.distributed and not isinstance(exc, (Diverged, KeyboardInterrupt)):
            message = (f"the {world.size}-process job broke off (usually another training process died or was "
                       f"killed): {message}")
            exc = RuntimeError(message)
        printer(events.status(status, message=message))
        if world.is_main:
            run.log(traceback.format_exc())
        raise exc


def cmd_evaluate(args) -> int:
    device = choose_device(args.device)
    dataset = load_dataset(DataConfig(data_dir=args.data_dir, download=not args.no_download))
    loaded = load_model(args.target)
    check_fits(loaded, dataset.classes)
    remembered = remembered_evaluate(loaded.model.to(device), dataset.test.to(device), loaded.normalizer(device),
                                     num_classes=len(loaded.classes), tta=loaded.tta,
                                     save_to=None if args.fresh else folder_for(dataset),
                                     shipped=() if args.fresh else (SHIPPED,))
    if remembered.note:
        print(f"note: {remembered.note}", file=sys.stderr)
    metrics = remembered.result
    if args.json:
        print(json.dumps(metrics.to_dict(loaded.classes), indent=2))
    else:
        print("\n".join(tutorial_lines(metrics, dataset.classes)))
    return 0


def cmd_predict(args) -> int:
    if args.top < 1:
        raise ConfigError({"top": "must be at least 1"})
    loaded = load_model(args.model)
    kept = snapshots.load(snapshots.file_for(loaded.path)) if args.replay else None
    if args.replay and kept is None:
        raise snapshots.SnapshotError(f"{args.model} has no weight snapshots to replay (it was trained before runs "
                                      "kept them, or with --snapshots 0); train a run to replay it")
    paths, problems = photo_paths(args.images)
    for name, wrong in problems:
        print(f"{name}: error: {wrong}", file=sys.stderr)
    failed = len(problems)
    for name in paths:
        try:
            images = load_for_model(name, args.framing).unsqueeze(0)
        except ImageError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.replay:
            print(f"{name}:")
            print("\n".join("  " + line for line in replay_lines(replay(loaded, kept, images[0]), loaded.classes)))
            continue
        prediction = loaded.predict(images)[0]
        shown = ", ".join(f"{c} {100 * p:.1f} %" for c, p in top_k(prediction.probabilities, loaded.classes, args.top))
        said = ood.verdict(prediction.familiarity, loaded.ood_threshold, len(loaded.classes), loaded.ood_unsure_below)
        print(f"{name}: {shown}; {said}")
    return 1 if failed else 0


def cmd_report(args) -> int:
    from core.report import run_report

    run = Run(Path(args.run))
    if not run.config_file.exists():
        raise FileNotFoundError(f"{args.run} is not a run directory (it has no config.json)")
    try:
        data_dir = args.data_dir or run.config().get("data", {}).get("data_dir")
        dataset = load_dataset(DataConfig(data_dir=data_dir, download=False))
    except DataError as exc:
        print(f"note: no test images in the report ({str(exc).splitlines()[0]})", file=sys.stderr)
        dataset = None
    Path(args.output).write_text(run_report(run, dataset), encoding="utf-8")
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 2**20:.1f} MiB)")
    return 0


def cmd_export(args) -> int:
    from core.export import SUFFIXES, check_export, export

    fmt = args.format or ("onnx" if args.output and args.output.endswith(".onnx") else "torchscript")
    target = Path(args.model)
    stem = (target.name if target.is_dir() else target.stem) or "model"
    output = Path(args.output or stem + SUFFIXES[fmt])
    if output.suffix != SUFFIXES[fmt]:
        raise ValueError(f"a {fmt} export is a {SUFFIXES[fmt]} file (its runtime goes by the suffix); "
                         f"name the output {output.with_suffix(SUFFIXES[fmt])} or pass --format")
    loaded = load_model(target)
    export(loaded, fmt, output)
    difference = check_export(loaded, output)
    print(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB, {fmt}): float32 [N, 3, 32, 32] RGB in 0-1 "
          f"-> logits over {len(loaded.classes)} classes ({', '.join(loaded.classes)}); loaded back by its own "
          f"runtime, its logits are within {difference:.1e} of the model's")
    return 0


def photo_paths(names: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files named and the images in each folder named (by name); (name, what is wrong) for each name that is
    neither a file nor a folder with images in it."""
    paths, problems = [], []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = image_files(path)
            paths += found
            if not found:
                problems.append((name, "a folder with no images in it"))
        elif path.is_file():
            paths.append(path)
        else:
            problems.append((name, "no such file or folder"))
    return paths, problems


def teach_photos(names: list[str], framing: str) -> list[tuple]:
    """(name, [3,32,32] uint8) of each photo named or in each folder named; a ValueError naming every bad one."""
    paths, problems = photo_paths(names)
    photos = []
    for path in paths:
        try:
            photos.append((path.name, load_for_model(path, framing)))
        except ImageError as exc:
            problems.append((str(path), str(exc)))
    if problems:
        raise ValueError("nothing was taught; fix these and try again:\n  " +
                         "\n  ".join(f"{name}: {wrong}" for name, wrong in problems))
    return photos


def cmd_teach(args) -> int:
    from core import teach

    base = load_model(args.base)
    dataset = load_dataset(DataConfig(data_dir=args.data_dir or teach.base_data_dir(base), download=False))
    photos = teach_photos(args.photos, args.framing)
    config = teach.TeachConfig(teach.check_request(base, args.class_name, photos, list(dataset.classes)),
                               mix=not args.no_mix)
    run_dir = Path(args.run_dir or Path("runs") / new_run_id())
    teach.check_target(run_dir)
    taught = teach.teach(base, photos, teach.reference(base, dataset), config)
    run = teach.write_run(taught, base, config, dataset, run_dir)
    print("\n".join(teach.summary_lines(taught, config)))
    print(f"-> {run.path} (use it like any run: evaluate, predict, the dashboard)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "report": cmd_report,
               "export": cmd_export, "teach": cmd_teach}[args.command]
    try:
        return command(args)
    # ConfigError and CheckpointError are ValueErrors
    except (DataError, ValueError, Diverged, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line here, the traceback is in the run's train.log
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
