"""How models hold up on photos: CIFAR-10 test images under the shifts a phone photo brings, "none of the ten"
and calibration, and one phone-sized upload end to end, for several models side by side.

    python -m benchmarks.photos NAME=PATH [NAME=PATH ...] [--images 2000] [--data-dir data]

PATH is a run directory or a .pth (with its model card beside it). Every figure is measured on the same
class-balanced subset of the original test set (`--images`, the first of each class), except the JPEG copy's row,
which takes the same number from `<data-dir>/cifar10-jpeg` when it is there. Out-of-distribution figures use the
reference outliers of core.ood (photos/ and synthetic images); the threshold is each model's own, set on its
validation images (a model without one has none). The framing rows build wider-than-square "photos" from test
images and classify them with each of core.images' framings.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image

from core import ood
from core.calibration import reliability
from core.checkpoints import LoadedModel, load_model
from core.data import DataConfig, DataError, first_of_each_class, load_dataset
from core.evaluate import logits_of
from core.images import FRAMINGS, enlarge, load_for_model, open_image, to_uint8_tensor
from core.interpret import saliency
from core.outliers import TRAINING_PHOTOS

PHONE = (4032, 3024)  # a 12-megapixel phone photo


def _rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotated about the centre, the corners filled with the picture's own surroundings (reflection), as a tilted
    photo of a larger scene would show."""
    padded = F.pad(images.float(), (8, 8, 8, 8), mode="reflect")
    turned = TF.rotate(padded, degrees, interpolation=TF.InterpolationMode.BILINEAR)
    return turned[..., 8:40, 8:40].round().clamp(0, 255).to(torch.uint8)


def _zoom(images: torch.Tensor, share: float) -> torch.Tensor:
    """The centre `share` of each side, enlarged back to 32×32: a close-up that cuts off the object's edges."""
    side = round(32 * share)
    start = (32 - side) // 2
    return TF.resized_crop(images, start, start, side, side, [32, 32], antialias=True)


SHIFTS = {
    "clean": lambda x: x,
    "zoom 75 %": lambda x: _zoom(x, 0.75),
    "zoom 50 %": lambda x: _zoom(x, 0.5),
    "JPEG q90": lambda x: TF.jpeg(x, 90),
    "JPEG q50": lambda x: TF.jpeg(x, 50),
    "JPEG q20": lambda x: TF.jpeg(x, 20),
    "blur σ 0.7": lambda x: TF.gaussian_blur(x, [5, 5], [0.7, 0.7]),
    "blur σ 1.2": lambda x: TF.gaussian_blur(x, [5, 5], [1.2, 1.2]),
    "darker ×0.6": lambda x: TF.adjust_brightness(x, 0.6),
    "brighter ×1.4": lambda x: TF.adjust_brightness(x, 1.4),
    "contrast ×0.6": lambda x: TF.adjust_contrast(x, 0.6),
    "saturation ×0.3": lambda x: TF.adjust_saturation(x, 0.3),
    "saturation ×1.6": lambda x: TF.adjust_saturation(x, 1.6),
    "rotate 10°": lambda x: _rotate(x, 10),
    "rotate −15°": lambda x: _rotate(x, -15),
}


def _wide_photos(images: torch.Tensor, kind: str) -> list[Image.Image]:
    """4:3 pictures (128×96) made from 32×32 test images. "centred": the image is the middle square and the sides
    continue it by reflection (an object photographed in the middle of a scene). "filling": the image's middle 32×24
    band (an object that fills a wide frame, its top and bottom cut)."""
    out = []
    for image in images:
        if kind == "centred":
            wide = F.pad(image.float().unsqueeze(0), (5, 5, 0, 0), mode="reflect")[0]  # 42×32 ≈ 4:3
        else:
            wide = image[:, 4:28, :].float()  # 32×24
        out.append(enlarge(wide.round().to(torch.uint8), 4) if kind == "filling" else
                   Image.fromarray(wide.round().to(torch.uint8).permute(1, 2, 0).numpy()).resize((128, 96),
                                                                                                Image.BICUBIC))
    return out


@torch.inference_mode()
def logits(loaded: LoadedModel, images: torch.Tensor) -> torch.Tensor:
    return logits_of(loaded.model, images, loaded.normalizer(), loaded.tta)


def accuracy(loaded: LoadedModel, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits(loaded, images).argmax(1) == labels).float().mean().item()


def phone_upload(loaded: LoadedModel, repeats: int = 21) -> float:
    """Median milliseconds from a phone-sized JPEG's bytes to its calibrated top 3 and Grad-CAM map."""
    picture = open_image(ood.PHOTOS / "chelsea.jpg").convert("RGB").resize(PHONE, Image.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    normalize = loaded.normalizer()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tensor = to_uint8_tensor(open_image(data))
        prediction = loaded.predict(tensor.unsqueeze(0))[0]
        saliency(loaded.model, tensor, normalize, target=prediction.top, layer=loaded.cam_layer)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])  # the first pays for one-time allocations


def photo_answers(loaded: LoadedModel) -> dict:
    """The sample photos that never trained (outlier exposure uses the others, core.outliers.TRAINING_PHOTOS) and
    the cat, each in both framings: the top class and the three-way answer as `loaded` is served, and the shares of
    "none of the ten" and "not sure" among the unrelated ones."""
    kept = [p for p in ood.outlier_photos() if p.name not in TRAINING_PHOTOS] + [ood.PHOTOS / "chelsea.jpg"]
    rows, answers = {}, []
    for path in kept:
        for framing in FRAMINGS:
            p = loaded.predict(load_for_model(path, framing).unsqueeze(0))[0]
            rows[f"{path.name} ({framing})"] = f"{loaded.classes[p.top]}: {p.answer} ({p.familiarity:.2f})"
            if path.name not in ood.IN_CLASS_PHOTOS:
                answers.append(p.answer)
    return {"answers": rows, "unrelated_views": len(answers),
            "unrelated_flagged": round(answers.count(ood.UNFAMILIAR) / len(answers), 4),
            "unrelated_not_sure": round(answers.count(ood.UNSURE) / len(answers), 4)}


def row(label: str, values) -> None:
    """One printed row of the table: a label, then a column per model."""
    print(f"{label:34s}" + "".join(f"{v:>14s}" for v in values), flush=True)


def accuracy_rows(models: dict[str, LoadedModel], test, jpeg) -> None:
    row("accuracy, % of test images", [])
    for shift, apply in SHIFTS.items():
        shifted = apply(test.images)
        row(f"  {shift}", (f"{100 * accuracy(m, shifted, test.labels):.1f}" for m in models.values()))
    if jpeg is not None:
        row("  the shared JPEG copy", (f"{100 * accuracy(m, jpeg.images, jpeg.labels):.1f}" for m in models.values()))
    for kind in ("centred", "filling"):
        pictures = _wide_photos(test.images, kind)
        for framing in FRAMINGS:
            views = torch.stack([to_uint8_tensor(p, framing) for p in pictures])
            row(f"  4:3 photo, object {kind}, {framing}",
                (f"{100 * accuracy(m, views, test.labels):.1f}" for m in models.values()))


def calibration_rows(models: dict[str, LoadedModel], test_logits: dict, labels: torch.Tensor) -> None:
    def ece(name: str, temperature: float) -> str:
        return f"{100 * reliability(torch.softmax(test_logits[name] / temperature, 1), labels).ece:.1f}"
    row("calibration (test images)", [])
    row("  temperature", (f"{m.temperature:.2f}" for m in models.values()))
    row("  ECE as trained, %", (ece(n, 1.0) for n in models))
    row("  ECE with its temperature, %", (ece(n, m.temperature) for n, m in models.items()))


def verdict_rows(models: dict[str, LoadedModel], test_logits: dict, outlier_logits: dict) -> None:
    def separation(name: str, m: LoadedModel, kind: str) -> str:
        familiar = ood.familiarity(test_logits[name], m.temperature, kind)
        return f"{ood.auroc(familiar, ood.familiarity(outlier_logits[name], m.temperature, kind)):.3f}"

    def at_threshold(m: LoadedModel, which: torch.Tensor) -> str:
        if m.ood_threshold is None:
            return "–"
        return f"{100 * (ood.familiarity(which, m.temperature) < m.ood_threshold).float().mean():.1f}"
    row("none of the ten (outliers vs test)", [])
    for kind in ood.SCORES:
        row(f"  AUROC, {kind}", (separation(n, m, kind) for n, m in models.items()))
    row(f"  outliers flagged at its threshold, % ({ood.SCORE})",
        (at_threshold(m, outlier_logits[n]) for n, m in models.items()))
    row("  test images flagged, %", (at_threshold(m, test_logits[n]) for n, m in models.items()))
    answered = {name: photo_answers(m) if m.ood_threshold is not None else None for name, m in models.items()}
    for key, label in (("unrelated_flagged", "flagged"), ("unrelated_not_sure", "not sure")):
        row(f"  photos of objects never trained, % {label}",
            (f"{100 * a[key]:.0f}" if a else "–" for a in answered.values()))


def cat_rows(models: dict[str, LoadedModel]) -> None:
    row("photos/chelsea.jpg (a cat)", [])
    for framing in FRAMINGS:
        image = load_for_model(ood.PHOTOS / "chelsea.jpg", framing).unsqueeze(0)
        verdicts = []
        for m in models.values():
            p = m.predict(image)[0]
            mark = {ood.UNFAMILIAR: " ✗", ood.UNSURE: " ?"}.get(p.answer, "")
            verdicts.append(f"{m.classes[p.top]} {100 * p.probabilities[p.top]:.0f} %{mark}")
        row(f"  {framing}", verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="NAME=PATH (a run directory or a .pth)")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    models = {name: load_model(path) for name, _, path in (item.partition("=") for item in args.models)}
    test = first_of_each_class(load_dataset(DataConfig(data_dir=args.data_dir, download=False)).test, args.images // 10)
    try:
        jpeg = first_of_each_class(load_dataset(DataConfig(data_dir=f"{args.data_dir}/cifar10-jpeg",
                                                           download=False)).test, args.images // 10)
    except DataError:
        jpeg = None
    outliers = ood.outlier_images()
    print(f"{len(test)} test images (the first {len(test) // 10} of each class), {len(outliers)} reference outliers "
          f"({len(ood.outlier_photos())} photos × 6 views + synthetic), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    row("", models)
    accuracy_rows(models, test, jpeg)
    test_logits = {name: logits(m, test.images) for name, m in models.items()}
    calibration_rows(models, test_logits, test.labels)
    verdict_rows(models, test_logits, {name: logits(m, outliers) for name, m in models.items()})
    cat_rows(models)
    row(f"phone photo {PHONE[0]}×{PHONE[1]} end to end, ms", (f"{phone_upload(m):.1f}" for m in models.values()))


if __name__ == "__main__":
    main()
