import pickle
import time

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms as transforms
from conftest import CLASSES, make_tree
from PIL import Image

from core.data import DataConfig, DataError, find_source, load_dataset, resolve_data_dir
from core.transforms import augment, color_jitter, cutout, normalizer, zoom_crop


def test_normalisation_equals_totensor_and_normalize_exactly():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    tutorial = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    expected = torch.stack([tutorial(Image.fromarray(p)) for p in pixels])
    ours = normalizer(DataConfig(), "cpu")(torch.from_numpy(pixels).permute(0, 3, 1, 2))
    assert ours.dtype == torch.float32
    assert torch.equal(ours, expected)  # bit for bit, not approximately


def test_normalisation_with_other_statistics_matches_torchvision():
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
    pixels = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    tv = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    expected = torch.stack([tv(Image.fromarray(p)) for p in pixels])
    ours = normalizer(DataConfig(mean=mean, std=std), "cpu")(torch.from_numpy(pixels).permute(0, 3, 1, 2))
    assert torch.equal(ours, expected)


def test_folder_tree_loads_classes_counts_and_pixels(tiny_tree, tmp_path):
    ds = load_dataset(DataConfig(data_dir=str(tiny_tree), download=False, cache_dir=str(tmp_path / "c")))
    assert ds.kind == "folder" and ds.classes == CLASSES
    assert ds.train.images.shape == (36, 3, 32, 32) and ds.train.images.dtype == torch.uint8
    assert ds.test.images.shape == (12, 3, 32, 32)
    assert ds.train.labels.dtype == torch.int64
    assert ds.train.class_counts(3) == [12, 12, 12] and ds.test.class_counts(3) == [4, 4, 4]
    # pixels are exactly the PNG's, channels first
    png = np.asarray(Image.open(tiny_tree / "train" / "green" / "0003.png"))
    assert torch.equal(ds.train.images[12 + 3], torch.from_numpy(png.copy()).permute(2, 0, 1))


def test_tree_one_folder_below_is_found(tmp_path):
    make_tree(tmp_path / "data" / "cifar10-jpeg", train_per_class=2, test_per_class=1)
    assert find_source(tmp_path / "data") == ("folder", tmp_path / "data" / "cifar10-jpeg")


def test_images_of_other_sizes_are_resized_to_32(tmp_path):
    root = make_tree(tmp_path / "big", train_per_class=2, test_per_class=1, size=64, suffix=".jpg")
    ds = load_dataset(DataConfig(data_dir=str(root), download=False, cache_dir=str(tmp_path / "c")))
    assert ds.train.images.shape == (6, 3, 32, 32)


def _write_torchvision_copy(root, n_train=10, n_test=5):
    """Files laid out and pickled exactly like torchvision's cifar-10-batches-py."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    arrays = {}
    for name in names:
        n = n_test if name == "test_batch" else n_train
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        arrays[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]}, f)
    return arrays


def test_torchvision_source(tmp_path, monkeypatch):
    arrays = _write_torchvision_copy(tmp_path / "tv")
    # our small copy cannot match the real files' md5 sums; the layout and decoding are what is tested
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    ds = load_dataset(DataConfig(data_dir=str(tmp_path / "tv"), download=False, cache_dir=str(tmp_path / "c")))
    assert ds.kind == "torchvision" and ds.classes[0] == "airplane" and len(ds.classes) == 10
    assert ds.train.images.shape == (50, 3, 32, 32) and ds.test.images.shape == (5, 3, 32, 32)
    data, labels = arrays["test_batch"]
    assert torch.equal(ds.test.images, torch.from_numpy(data).view(5, 3, 32, 32))
    assert ds.test.labels.tolist() == labels
    # same pixels as torchvision's own dataset + ToTensor
    tv = torchvision.datasets.CIFAR10(str(tmp_path / "tv"), train=False, transform=transforms.ToTensor())
    assert torch.equal(normalizer(DataConfig(mean=(0, 0, 0), std=(1, 1, 1)), "cpu")(ds.test.images[:1])[0], tv[0][0])


def test_second_load_comes_from_the_cache_and_is_fast(tmp_path):
    root = make_tree(tmp_path / "t", train_per_class=40, test_per_class=10)
    config = DataConfig(data_dir=str(root), download=False, cache_dir=str(tmp_path / "cache"))
    first = load_dataset(config)
    start = time.perf_counter()
    second = load_dataset(config)
    assert second.from_cache and not first.from_cache
    assert time.perf_counter() - start < 1.0
    assert torch.equal(first.train.images, second.train.images) and second.classes == first.classes


def test_cache_is_rebuilt_when_the_tree_changes(tmp_path):
    root = make_tree(tmp_path / "t", train_per_class=3, test_per_class=1)
    config = DataConfig(data_dir=str(root), download=False, cache_dir=str(tmp_path / "cache"))
    load_dataset(config)
    Image.new("RGB", (32, 32), (1, 2, 3)).save(root / "train" / "red" / "extra.png")
    again = load_dataset(config)
    assert not again.from_cache and len(again.train) == 10


def test_damaged_cache_is_rebuilt(tmp_path):
    root = make_tree(tmp_path / "t", train_per_class=3, test_per_class=1)
    config = DataConfig(data_dir=str(root), download=False, cache_dir=str(tmp_path / "cache"))
    load_dataset(config)
    for f in (tmp_path / "cache").iterdir():
        f.write_bytes(b"garbage")
    assert len(load_dataset(config).train) == 9


def test_data_dir_from_argument_then_environment_then_default(monkeypatch):
    assert str(resolve_data_dir("x/y")) == "x/y"
    monkeypatch.setenv("CIFAR_DATA", "/from/env")
    assert str(resolve_data_dir()) == "/from/env"
    monkeypatch.delenv("CIFAR_DATA")
    assert str(resolve_data_dir()) == "data"


def test_missing_data_without_download_names_directory_and_layouts(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(data_dir=str(tmp_path / "nothing"), download=False))
    message = str(err.value)
    assert str((tmp_path / "nothing").resolve()) in message
    assert "cifar-10-batches-py" in message and "train/<class>" in message
    assert "--data-dir" in message and "CIFAR_DATA" in message


def test_failed_download_is_a_clear_data_error(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(data_dir=str(tmp_path / "empty")))
    message = str(err.value)
    assert "downloading CIFAR-10 there failed: no network" in message and "urlopen" not in message
    assert str((tmp_path / "empty").resolve()) in message and "--data-dir" in message
    assert "tar -xzf cifar-10-python.tar.gz" in message  # the offline way


def test_a_refused_download_names_the_http_status(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def missing(*args, **kwargs):
        raise urllib.error.HTTPError("https://example.invalid", 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", missing)
    with pytest.raises(DataError, match="the server answered 404 Not Found"):
        load_dataset(DataConfig(data_dir=str(tmp_path / "empty")))


def test_undecodable_file_in_tree_is_named(tmp_path):
    root = make_tree(tmp_path / "t", train_per_class=2, test_per_class=1)
    (root / "train" / "red" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="broken.jpg"):
        load_dataset(DataConfig(data_dir=str(root), download=False, cache_dir=str(tmp_path / "c")))


def test_empty_class_folder_is_reported(tmp_path):
    root = make_tree(tmp_path / "t", train_per_class=2, test_per_class=1)
    (root / "train" / "zebra").mkdir()
    with pytest.raises(DataError, match="zebra"):
        load_dataset(DataConfig(data_dir=str(root), download=False, cache_dir=str(tmp_path / "c")))


@pytest.mark.parametrize("pad", [4, 2])
def test_augment_crops_within_padding_and_flips(pad):
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(2, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    seen_shift = seen_flip = False
    padded, side = torch.nn.functional.pad(images, (pad,) * 4), 2 * pad + 1
    for _ in range(20):
        out = augment(images, gen, pad)
        assert out.shape == images.shape and out.dtype == torch.uint8
        for b in range(2):
            # every output is some 32x32 window of the padded image, maybe mirrored
            windows = [padded[b, :, y:y + 32, x:x + 32] for y in range(side) for x in range(side)]
            match = [i for i, w in enumerate(windows) if torch.equal(w, out[b])]
            flipped = [i for i, w in enumerate(windows) if torch.equal(w.flip(2), out[b])]
            assert match or flipped
            seen_flip |= bool(flipped) and not match
            seen_shift |= side * side // 2 not in match + flipped  # the centred window
    assert seen_flip and seen_shift


def test_augment_without_translation_only_flips():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(0), pad=0)
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(2)) for o, i in zip(out, images))


def _ramps(n: int) -> torch.Tensor:
    """Channel 0 rises 8 per pixel to the right, channel 1 8 per pixel down: a window's size and place can be read
    back from its pixels."""
    ramp = torch.arange(32) * 8
    return torch.stack([ramp.expand(32, 32), ramp[:, None].expand(32, 32), torch.zeros(32, 32, dtype=torch.int64)]
                       ).to(torch.uint8).expand(n, 3, 32, 32)


@pytest.mark.parametrize("min_area", [0.35, 0.8])
def test_zoom_crop_takes_windows_of_at_least_min_area(min_area):
    images = _ramps(256)
    zoomed = zoom_crop(images, torch.Generator().manual_seed(0), min_area)
    assert zoomed.shape == images.shape and zoomed.dtype == torch.uint8
    out = zoomed.long()
    # the first and last output pixels are 31 window-pixels apart: the window's share of each side
    width = (out[:, 0, :, 31] - out[:, 0, :, 0]).float().mean(1) / (8 * 31)
    height = (out[:, 1, 31, :] - out[:, 1, 0, :]).float().mean(1) / (8 * 31)
    area = width * height
    assert (area >= min_area - 0.02).all() and (area <= 1.01).all()
    assert area.mean() < 1 - (1 - min_area) / 4  # it does zoom in, over the whole range
    inside = (width < 0.97) & (height < 0.97)  # a window cut to the image's side loses its aspect
    aspect = (width / height)[inside]
    assert inside.any() and (aspect >= 3 / 4 - 0.03).all() and (aspect <= 4 / 3 + 0.03).all()
    rows_rise = (out[:, 0, :, 1:] >= out[:, 0, :, :-1]).all()  # never mirrored or turned: only scaled and moved
    assert rows_rise and (out[:, 1, 1:, :] >= out[:, 1, :-1, :]).all()
    assert torch.equal(zoom_crop(images, torch.Generator().manual_seed(0), min_area), zoomed)  # the generator decides


def test_zoom_crop_keeps_a_flat_image_flat():
    flat = torch.full((8, 3, 32, 32), 77, dtype=torch.uint8)
    assert torch.equal(zoom_crop(flat, torch.Generator().manual_seed(1), 0.1), flat)


def test_color_jitter_is_torchvision_colorjitter_with_the_drawn_factors():
    import torchvision.transforms.v2.functional as TF
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    out = color_jitter(images, torch.Generator().manual_seed(3), 0.5)
    factors = 0.5 + torch.rand(3, 6, generator=torch.Generator().manual_seed(3))  # brightness, contrast, saturation
    for i, image in enumerate(images.float() / 255):
        expected = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(image, factors[0, i].item()),
                                                           factors[1, i].item()), factors[2, i].item())
        assert (out[i].float() - 255 * expected).abs().max() <= 1.5


def test_color_jitter_off_is_the_identity_and_keeps_gray_gray():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(color_jitter(images, torch.Generator().manual_seed(0), 0.0), images)
    gray = torch.full((64, 3, 32, 32), 100, dtype=torch.uint8)
    out = color_jitter(gray, torch.Generator().manual_seed(0), 0.4)
    assert (out == out[:, :1]).all()  # no colour from nowhere
    assert out.min() >= 59 and out.max() <= 141 and len(out.unique()) > 10  # brightness ×0.6–1.4, image by image


@pytest.mark.parametrize("size", [12, 1])
def test_cutout_blanks_one_square_of_the_given_side_per_image(size):
    images = torch.randint(0, 128, (64, 3, 32, 32), dtype=torch.uint8)  # never 128 itself: blanks are told apart
    out = cutout(images, torch.Generator().manual_seed(0), size)
    blank = (out == 128).all(1)  # [64, 32, 32]
    assert (blank.sum((1, 2)) == size * size).all()
    rows, cols = blank.any(2), blank.any(1)
    assert (rows.sum(1) == size).all() and (cols.sum(1) == size).all()  # one square, not scattered pixels
    assert torch.equal(out.masked_fill(blank[:, None], 0), images.masked_fill(blank[:, None], 0))  # the rest kept
    assert len({(r.nonzero()[0].item(), c.nonzero()[0].item()) for r, c in zip(rows, cols)}) > 10  # it moves


def test_download_streams_checks_and_extracts_with_progress(tmp_path, monkeypatch):
    """The download path end to end against a local archive laid out like torchvision's."""
    import hashlib
    import io
    import tarfile
    import urllib.request

    _write_torchvision_copy(tmp_path / "src")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    payload = buffer.getvalue()

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(payload))
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    seen = []
    from core.data import download_cifar10
    download_cifar10(tmp_path / "dl", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(payload), len(payload))
    ds = load_dataset(DataConfig(data_dir=str(tmp_path / "dl"), download=False, cache_dir=str(tmp_path / "c")))
    assert ds.kind == "torchvision" and len(ds.test) == 5


def test_corrupt_download_is_refused(tmp_path, monkeypatch):
    import io
    import urllib.request

    class Response(io.BytesIO):
        headers = {}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(b"truncated junk"))
    from core.data import download_cifar10
    with pytest.raises(DataError, match="checksum mismatch"):
        download_cifar10(tmp_path / "dl")
    assert not list((tmp_path / "dl").iterdir())  # nothing half-downloaded left behind
