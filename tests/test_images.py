import image_zoo
import numpy as np
import pytest
import torch
from PIL import Image

from core.images import FRAMINGS, ImageError, enlarge, load_for_model, mosaic, side_by_side, to_32


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", sorted(image_zoo.good()))
def test_every_image_kind_becomes_a_32x32_rgb_tensor(name, framing):
    # the 100,000×10 strip included: padded to a square only after shrinking (first, it would take 30 GB)
    tensor = load_for_model(image_zoo.good()[name], framing)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.uint8


@pytest.mark.parametrize("name", sorted(image_zoo.bad()))
def test_bad_files_are_refused_with_a_reason(name):
    data, fragment = image_zoo.bad()[name]
    with pytest.raises(ImageError, match=fragment):
        load_for_model(data)


def test_conversions_keep_the_picture():
    red = image_zoo.photo(colour=(250, 10, 10))
    assert load_for_model(image_zoo._save(red, "PNG"))[0].float().mean() > 200
    # transparent pixels become white, not black
    clear = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    assert load_for_model(image_zoo._save(clear, "PNG")).min() == 255
    # 16-bit grey is scaled to 8 bits, not clipped to white
    grey = load_for_model(image_zoo.good()["sixteen-bit.png"])
    assert 0 < grey.float().mean() < 255 and grey.max() > 240 and grey.min() < 50
    # an animated GIF is classified by its first frame
    first = load_for_model(image_zoo.good()["animated.gif"])
    assert first[0].float().mean() > first[2].float().mean()


def test_wide_images_are_centre_cropped_not_squashed():
    left_blue_right_red = np.zeros((32, 96, 3), np.uint8)
    left_blue_right_red[:, :32, 2] = 255
    left_blue_right_red[:, 32:64, 1] = 255
    left_blue_right_red[:, 64:, 0] = 255
    out = np.asarray(to_32(Image.fromarray(left_blue_right_red), "crop"))
    assert out[..., 1].min() > 200 and out[..., 0].max() < 30  # only the green centre remains
    whole = np.asarray(to_32(Image.fromarray(left_blue_right_red), "whole"))
    band = whole[11:21]  # the picture, 32×11, between two bands of padding
    assert band[:, 2:9, 2].min() > 200 and band[:, 13:19, 1].min() > 200 and band[:, 24:30, 0].min() > 200


def test_a_mosaic_is_every_picture_enlarged_in_rows_with_white_between():
    filters = torch.randint(0, 255, (6, 3, 5, 5), dtype=torch.uint8)  # 255 is left to the gaps
    tiles = np.asarray(mosaic(filters, per_row=4, scale=3, gap=2))
    assert tiles.shape == (2 * 15 + 2, 4 * 15 + 3 * 2, 3)  # two rows of four 15-pixel cells, 2 pixels apart
    for i, picture in enumerate(filters):
        top, left = (i // 4) * 17, (i % 4) * 17
        assert (tiles[top:top + 15:3, left:left + 15:3] == picture.permute(1, 2, 0).numpy()).all()
        assert (tiles[top + 2:top + 15:3, left + 2:left + 15:3] == tiles[top:top + 15:3, left:left + 15:3]).all()
    assert (tiles[:, 15:17] == 255).all() and (tiles[15:17] == 255).all()  # the gaps
    assert (tiles[17:, 2 * 17:] == 255).all()  # the two cells after the last picture


def test_side_by_side_is_the_photo_and_its_views_at_one_height_on_a_clear_ground():
    view = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    heat = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)  # core.interpret.overlay's kind
    row = side_by_side(Image.new("RGB", (400, 300), (10, 20, 30)), [view, heat], height=64, gap=4)
    assert row.mode == "RGBA" and row.size == (85 + 4 + 64 + 4 + 64, 64)  # 4:3 at 64 pixels high is 85 wide
    pixels = np.asarray(row)
    assert (pixels[:, :85, :3] == (10, 20, 30)).all() and (pixels[:, :85, 3] == 255).all()
    assert (pixels[:, 85:89, 3] == 0).all() and (pixels[:, 153:157, 3] == 0).all()  # the gaps are transparent
    assert (pixels[::2, 89:153:2, :3] == view.permute(1, 2, 0).numpy()).all()  # each view twice as large, crisp
    assert (pixels[1::2, 90:153:2, :3] == view.permute(1, 2, 0).numpy()).all()
    assert (pixels[::2, 157::2, :3] == heat).all()
    # a panorama is fitted into twice the height across, centred: the views keep their size beside it
    wide = side_by_side(Image.new("RGB", (1000, 100), "red"), [view], height=64, gap=4)
    assert wide.size == (128 + 4 + 64, 64)
    alpha = np.asarray(wide)[:, :128, 3]
    assert (alpha[:25] == 0).all() and (alpha[25:38] == 255).all() and (alpha[38:] == 0).all()  # 13 rows of photo


def test_enlarge_is_crisp_and_can_be_framed():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    big = np.asarray(enlarge(image, 4))
    assert big.shape == (128, 128, 3)
    assert (big[::4, ::4] == image.permute(1, 2, 0).numpy()).all() and (big[1::4, 1::4] == big[::4, ::4]).all()
    framed = np.asarray(enlarge(image, 4, border="#ff0000"))
    assert framed.shape == (136, 136, 3) and tuple(framed[0, 0]) == (255, 0, 0)
