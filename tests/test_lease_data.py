"""scripts/lease_data.py: the data that travels to a GPU machine comes back pixel for pixel."""
import pytest

from scripts.lease_data import pack, unpack, verify


def test_the_mosaics_rebuild_every_image_in_its_class_and_order(tiny_tree, tmp_path, capsys):
    pack(str(tiny_tree), tmp_path / "mosaics")
    assert sorted(p.name for p in (tmp_path / "mosaics").iterdir()) == ["labels.json", "test-0.webp", "train-0.webp"]
    unpack([tmp_path / "mosaics"], tmp_path / "tree")
    assert len(list((tmp_path / "tree" / "train" / "red").glob("*.png"))) == 12
    verify(str(tiny_tree), tmp_path / "tree")  # raises on the first image that differs
    assert "identical: 36 training and 12 test images" in capsys.readouterr().out


def test_a_missing_mosaic_is_named_before_anything_is_written(tiny_tree, tmp_path):
    pack(str(tiny_tree), tmp_path / "mosaics")
    (tmp_path / "mosaics" / "test-0.webp").unlink()
    with pytest.raises(SystemExit, match=r"mosaics missing .*test-0\.webp"):
        unpack([tmp_path / "mosaics"], tmp_path / "tree")
    assert not (tmp_path / "tree").exists()
