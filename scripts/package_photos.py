"""Build photos/validation/ and photos/exposure/ from real photos that ship in Debian packages. validation/: sorted
by hand into one of CIFAR-10's classes or "none of the ten", to choose and check the "none of the ten" verdict and
the framing on (issue 24, 1b); it never trains. exposure/: other photos of things that are none of the ten, from the
same packages, for outlier exposure (core.outliers) to train on.

    python -m scripts.package_photos [--photos photos]

Downloads two Debian 12 packages with `apt-get download` (GCompris's data: scene photos from Wikimedia Commons,
each with its author and licence; Tux Paint's stamps: photos of single things cut out, GPL-2), takes the files
listed below, reduces each to at most 256 pixels a side (cut-outs onto white), saves it as JPEG at quality 90 under
`<label>/` (exposure/: at most 128 pixels, one folder) and writes a README.md with every file's source and terms.
The validation lists were made by looking at each picture; the ones that could honestly be argued either way (a
moose, a jaguar, a pickup, a race car, a dingo, a toy boat, an armoured carrier) are left out of both groups.
"""
from __future__ import annotations

import argparse
import io
import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SIDE, EXPOSURE_SIDE = 256, 128
NONE = "none"
GCOMPRIS = ("gcompris-qt-data", "3.1-2", "usr/share/gcompris-qt/rcc")
TUXPAINT = ("tuxpaint-stamps-default", "2022.06.04-1", "usr/share/tuxpaint/stamps")

# GCompris: (resource file, folder inside it) -> {file stem: label}
GCOMPRIS_PHOTOS = {
    ("explore_farm_animals.rcc", "explore_farm_animals/resource/animals"): {
        "cat": "cat", "chicken": "bird", "dog": "dog", "duck": "bird", "horse": "horse", "owl": "bird",
        "cow": NONE, "pig": NONE, "sheep": NONE},
    ("explore_world_animals.rcc", "explore_world_animals/resource/animals"): {
        "scarlet_macaw": "bird", **dict.fromkeys(
            ["bison", "chameleon", "crocodile", "dragon", "giraffe", "hedgehog", "kangaroo", "koala", "lemur",
             "narwhal", "panda", "polar_bear"], NONE)},
    ("erase.rcc", "erase/resource"): {
        **dict.fromkeys(["gosling", "heron", "kingfisher", "northern_harrier", "penguin", "spoonbills", "swans",
                         "toucan"], "bird"),
        "horse": "horse", "kitten": "cat",
        **dict.fromkeys(["alpaca", "bee", "butterfly", "calf", "camels", "caterpillar", "chamaeleon", "crab",
                         "dolphin", "flying_fox", "gibbon", "giraffe", "goat", "gorilla", "long_nosed_monkey",
                         "macaque", "meerkats", "nubian_ibex", "pika", "red_panda", "rhinoceros", "squirrel"], NONE)},
    ("categorization.rcc", "categorization/resource/images/others"): dict.fromkeys(
        ["baseball", "blackslate", "bucket", "buffetset", "bulb", "chair", "cup", "erasers", "igloo", "knife", "pan",
         "pencil", "pillow", "plate", "spoons", "volleyball", "weighingMachine"], NONE),
    ("categorization.rcc", "categorization/resource/images/renewable"): dict.fromkeys(
        ["dam1", "dam3", "geothermal", "solar1", "solar4", "solar7", "windmill", "windmill3", "windmill6",
         "windmill13"], NONE),
}
# Tux Paint: path under stamps/ without ".png" -> label
TUXPAINT_PHOTOS = {
    "vehicles/flight/planes/747": "airplane", "military/vehicles/f22_raptor": "airplane",
    "vehicles/auto/beetle": "automobile", "vehicles/auto/sportscar2": "automobile", "vehicles/auto/sedan": "automobile",
    "vehicles/ship/chineseJunk": "ship",
    "vehicles/garbagetruck": "truck", "vehicles/emergency/firetruck": "truck",
    **{f"animals/mammals/deer/{n}": "deer" for n in ("wapiti", "doe", "deer", "caribou")},
    "animals/mammals/dogs/dog": "dog",
    "animals/amphibians/frog": "frog", "animals/amphibians/frog-1": "frog",
    "animals/mammals/equines/horse": "horse",
    **{f"animals/birds/{n}": "bird" for n in ("blackbird", "crow", "pigeon", "ostrich", "pelican", "rooster", "tucan",
                                              "magellanic_penguin")},
    **dict.fromkeys(["vehicles/flight/balloon360", "vehicles/wheel_tractor", "vehicles/masstransit/green_korean_bus",
                     "vehicles/cycle/pink_tricycle", "military/vehicles/bradley", "military/vehicles/ww2_german_gun",
                     "animals/mammals/equines/donkey", "animals/mammals/equines/zebra", "animals/mammals/dogs/fox"],
                    NONE),
}


# Exposure: none of the ten, and none of the files above. Whole GCompris folders of tools and fish; Tux Paint's
# photo stamps (not its cartoons or mirrored copies) in these folders, less what could pass for one of the classes
# (a cement mixer, antelopes that look like deer). Its birds, vehicles, dogs, cats, deer and horses are left out.
GCOMPRIS_EXPOSURE = {("categorization.rcc", "categorization/resource/images/tools"),
                     ("categorization.rcc", "categorization/resource/images/fishes")}
TUXPAINT_EXPOSURE = ("clothes", "food", "hobbies", "household", "medical", "people", "plants", "space", "sports",
                     "town", "animals/fish", "animals/insects", "animals/lizards", "animals/shellfish",
                     "animals/marsupials", "animals/mammals")
TUXPAINT_NOT_EXPOSURE = ("cats", "deer", "dogs", "equines", "cementmixer", "indian_blackbuck", "gnu-")


def unpack_rcc(path: Path) -> dict[str, bytes]:
    """Every file in a compiled Qt resource (.rcc), by its path: the format is a header, a tree of 14- or 22-byte
    nodes, UTF-16 names and length-prefixed data, zlib-compressed where a node's flag says so."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file")
    version, tree, data, names = struct.unpack(">iiii", b[4:20])
    node = 22 if version >= 2 else 14
    files: dict[str, bytes] = {}

    def name(offset: int) -> str:
        length, = struct.unpack(">H", b[names + offset:names + offset + 2])
        return b[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node
        name_offset, flags = struct.unpack(">iH", b[at:at + 6])
        here = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # a directory
            count, first = struct.unpack(">ii", b[at + 6:at + 14])
            for child in range(count):
                walk(first + child, here)
            return
        offset, = struct.unpack(">i", b[at + 10:at + 14])
        size, = struct.unpack(">I", b[data + offset:data + offset + 4])
        raw = b[data + offset + 4:data + offset + 4 + size]
        files[here.lstrip("/")] = zlib.decompress(raw[4:]) if flags & 1 else raw

    walk(0, "")
    return files


def credits(readme: str) -> dict[str, dict[str, str]]:
    """GCompris's README blocks ("Copyright: / Source: / License: / Files:") as {file name: its fields}."""
    out = {}
    for block in re.split(r"\n\s*\n", readme):
        fields, files, in_files = {}, [], False
        for line in block.splitlines():
            key, colon, value = line.partition(":")
            if colon and key.strip() in ("Copyright", "Source", "License", "Comment", "Comments", "Files"):
                in_files = key.strip() == "Files"
                if in_files:
                    files += value.split()
                else:
                    fields[key.strip()] = value.strip()
            elif in_files or line.strip().endswith(".webp"):  # some blocks list their files without "Files:"
                files += line.split()
        out.update({f: fields for f in files})
    return out


def download(package: str, version: str, into: Path) -> Path:
    subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=into, check=True, capture_output=True)
    tree = into / package
    subprocess.run(["dpkg-deb", "-x", next(into.glob(f"{package}_*.deb")), tree], check=True)
    return tree


def save(picture: Image.Image, dest: Path, side: int = SIDE) -> None:
    picture = picture.convert("RGBA")
    on_white = Image.new("RGBA", picture.size, "white")
    on_white.alpha_composite(picture)
    on_white = on_white.convert("RGB")
    on_white.thumbnail((side, side), Image.LANCZOS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    on_white.save(dest, "JPEG", quality=90)


def destination(photos: Path, kind: str, label: str, name: str) -> tuple[Path, int]:
    """Where a photo goes and its largest side: validation/<label>/ at SIDE, or exposure/ at EXPOSURE_SIDE."""
    if kind == "validation":
        return photos / "validation" / label / name, SIDE
    return photos / "exposure" / name, EXPOSURE_SIDE


def exposure_stamps(tuxpaint: Path) -> list[str]:
    chosen = []
    for folder in TUXPAINT_EXPOSURE:
        for path in sorted((tuxpaint / folder).rglob("*.png")):
            stem = path.relative_to(tuxpaint).with_suffix("").as_posix()
            if "cartoon" in stem or "_mirror" in stem or any(word in stem for word in TUXPAINT_NOT_EXPOSURE):
                continue
            chosen.append(stem)
    return chosen


def build(photos: Path, work: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Writes both folders; returns their (file, label, source, terms) rows for the READMEs."""
    rows = {"validation": [], "exposure": []}
    gcompris = download(*GCOMPRIS[:2], work) / GCOMPRIS[2]
    exposure = {key: None for key in GCOMPRIS_EXPOSURE}
    for (resource, folder), labels in {**GCOMPRIS_PHOTOS, **exposure}.items():
        files = unpack_rcc(gcompris / resource)
        prefix = f"gcompris/src/activities/{folder}"
        terms = credits(files[f"{prefix}/README"].decode())
        kind = "exposure" if labels is None else "validation"
        if labels is None:  # exposure: every photo in the folder
            labels = {Path(f).stem: NONE for f in files if f.startswith(prefix) and f.endswith(".webp")}
        for stem, label in labels.items():
            name = f"{stem}.webp"
            dest, side = destination(photos, kind, label, f"gcompris-{folder.split('/')[0]}-{stem}.jpg")
            save(Image.open(io.BytesIO(files[f"{prefix}/{name}"])), dest, side)
            c = terms.get(name, {})
            origin = c.get("Source") or c.get("Comment") or "no source given"
            source = f"{GCOMPRIS[0]} {GCOMPRIS[1]}, {resource}:{folder}/{name}; {origin}"
            rows[kind].append((dest.relative_to(photos / kind).as_posix(), label, source,
                               f"{c.get('License', 'see the package')}, {c.get('Copyright', 'GCompris')}"))
    tuxpaint = download(*TUXPAINT[:2], work) / TUXPAINT[2]
    chosen = [(stem, label, "validation") for stem, label in TUXPAINT_PHOTOS.items()]
    chosen += [(stem, NONE, "exposure") for stem in exposure_stamps(tuxpaint) if stem not in TUXPAINT_PHOTOS]
    for stem, label, kind in chosen:
        tag = f"tuxpaint-{stem.replace('/', '-')}.jpg" if kind == "exposure" else f"tuxpaint-{Path(stem).name}.jpg"
        dest, side = destination(photos, kind, label, tag)
        save(Image.open(tuxpaint / f"{stem}.png"), dest, side)
        rows[kind].append((dest.relative_to(photos / kind).as_posix(), label,
                           f"{TUXPAINT[0]} {TUXPAINT[1]}, stamps/{stem}.png (a cut-out)",
                           "GPL-2+, Tux Paint's stamp authors (Bill Kendrick and contributors)"))
    return rows


README = {"validation": """# Real photos for choosing the verdict and the framing

Built by `python -m scripts.package_photos` from two Debian 12 packages; see that script for the lists. Each
folder is a label: one of CIFAR-10's classes, or `none` for photos of none of them. Sorted by looking at each picture;
pictures that could honestly be argued either way were left out. Every file was reduced to at most {side} pixels a
side and saved as JPEG at quality 90; Tux Paint's cut-outs were put on white. None of these photos trains a model
(outlier exposure trains on `../exposure/`, which shares no file with this folder): they are for measuring.
GCompris's are scene photos; Tux Paint's are single things cut out on white, which a CIFAR model finds far
easier, and most of them are of the ten: benchmarks/real_photos reports the scene photos on their own too.

{counts}

| file | label | from | terms |
| --- | --- | --- | --- |
""", "exposure": """# Real photos of things that are none of the ten, for outlier exposure

Built by `python -m scripts.package_photos` from the same two Debian 12 packages as `../validation/`, but none of
its files: GCompris's photos of tools and fish, and Tux Paint's photo stamps of food, plants, clothes, household
things, instruments, animals that are none of the classes and more (its birds, vehicles, cats, dogs, deer and horses
are left out, and so is anything that could pass for one of the classes). Each was reduced to at most {side}
pixels a side, cut-outs on white, and saved as JPEG at quality 90. core.outliers trains on views of them.

{counts}

| file | label | from | terms |
| --- | --- | --- | --- |
"""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "photos")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        built = build(args.photos, Path(work))
    for kind, rows in built.items():
        labels = sorted({r[1] for r in rows}, key=lambda x: (x == NONE, x))
        counts = ", ".join(f"{label}: {sum(r[1] == label for r in rows)}" for label in labels)
        text = README[kind].format(side=SIDE if kind == "validation" else EXPOSURE_SIDE,
                                   counts=f"{len(rows)} photos ({counts}).")
        text += "".join(f"| `{f}` | {label} | {source} | {terms} |\n" for f, label, source, terms in sorted(rows))
        (args.photos / kind / "README.md").write_text(text)
        print(f"{len(rows)} photos in {args.photos / kind}: {counts}")


if __name__ == "__main__":
    main()
