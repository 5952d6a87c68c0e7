import numpy as np
import pytest
import torch

from core import similarity
from core.config import TrainConfig
from core.data import DataConfig, Split
from core.models import Net, build_model
from core.train import train
from core.transforms import normalizer

NORMALIZE = normalizer(DataConfig(), "cpu")


def clusters(per: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight, well-apart groups of 32-D features, and their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 32, generator=g) * 5
    labels = torch.arange(3).repeat_interleave(per)
    return centres[labels] + 0.3 * torch.randn(3 * per, 32, generator=g), labels


def test_features_are_what_the_last_layer_reads_and_the_model_is_left_alone():
    torch.manual_seed(0)
    model = Net(num_classes=10).eval()
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    features = similarity.penultimate(model, images, NORMALIZE, batch_size=3)
    assert features.shape == (7, 84)
    with torch.no_grad():
        assert torch.allclose(model.fc3(features), model(NORMALIZE(images)), atol=1e-5)
    assert not model.fc3._forward_pre_hooks  # the hook lived on a private view
    wide = build_model("fastnet", 8, 10).eval()
    assert similarity.penultimate(wide, images, NORMALIZE).shape == (7, 32)


@pytest.mark.parametrize("method", similarity.METHODS)
def test_both_maps_show_clear_groups_and_are_reproducible(method):
    features, labels = clusters()
    coordinates = similarity.project(features, method)
    assert coordinates.shape == (len(features), 2) and coordinates.dtype == np.float32
    assert similarity.separation(coordinates, labels) > 0.95
    assert np.array_equal(coordinates, similarity.project(features, method))
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    assert similarity.separation(coordinates, shuffled) < 0.6  # mixed labels are not separated
    with pytest.raises(ValueError, match="unknown map"):
        similarity.project(features, "umap")


def test_nearest_is_by_cosine_and_a_photo_lands_among_its_neighbours():
    features, labels = clusters()
    indices, scores = similarity.nearest(features[5] * 3, features, 8)  # scale does not matter
    assert indices[0] == 5 and scores[0] == pytest.approx(1.0) and scores == sorted(scores, reverse=True)
    assert all(labels[i] == labels[5] for i in indices)
    coordinates = similarity.project(features, "pca")
    x, y = similarity.place(coordinates, features, features[5])
    group = coordinates[(labels == labels[5]).numpy()]
    assert group[:, 0].min() <= x <= group[:, 0].max() and group[:, 1].min() <= y <= group[:, 1].max()


@pytest.fixture
def trained(dataset):
    return train(TrainConfig(epochs=1, batch_size=4, lr=0.01, snapshots=0), dataset, torch.device("cpu")).model


def test_a_feature_map_is_remembered_and_a_bad_file_is_not_trusted(trained, dataset, tmp_path):
    first = similarity.feature_map(trained, dataset.test, NORMALIZE, save_to=tmp_path)
    assert first.source == "computed" and len(first.test_features) == len(dataset.test)
    tsne = first.coordinates("tsne")
    assert similarity.remember(first.with_map("tsne", tsne), trained, dataset.test, NORMALIZE, tmp_path)
    again = similarity.feature_map(trained, dataset.test, NORMALIZE, save_to=tmp_path)
    assert again.source == "remembered" and not again.note
    assert torch.equal(again.test_features, first.test_features)
    assert np.array_equal(again.maps["tsne"], tsne) and "pca" not in again.maps
    # another model (or other images) has another key: nothing stale is found
    other = Net(num_classes=3).eval()
    assert similarity.feature_map(other, dataset.test, NORMALIZE, save_to=tmp_path).source == "computed"
    for path in tmp_path.glob("map-*.pt"):
        path.write_bytes(b"junk")
    broken = similarity.feature_map(trained, dataset.test, NORMALIZE, save_to=tmp_path)
    assert broken.source == "computed" and "was not used: it could not be read" in broken.note
    assert torch.equal(broken.test_features, first.test_features)


def test_the_map_shows_the_first_test_images_only():
    n = similarity.MAP_IMAGES
    test = Split(torch.zeros(n + 5, 3, 32, 32, dtype=torch.uint8), torch.zeros(n + 5, dtype=torch.long))
    model = Net(num_classes=10).eval()
    found = similarity.feature_map(model, test, NORMALIZE)
    assert len(found.test_features) == n
    index, features, note = similarity.neighbour_bank(model, test, NORMALIZE)  # fewer than BANK_IMAGES: every one
    assert torch.equal(index, torch.arange(len(test))) and features.shape == (len(test), found.test_features.shape[1])
    assert note == ""


def test_the_neighbour_features_are_remembered_and_a_bad_file_is_not_trusted(trained, dataset, tmp_path, monkeypatch):
    index, first, _ = similarity.neighbour_bank(trained, dataset.train, NORMALIZE, save_to=tmp_path)
    assert torch.equal(index, torch.arange(len(dataset.train))) and first.dtype == torch.float32
    assert len(list(tmp_path.glob("bank-*.pt"))) == 1
    computed = similarity.penultimate
    monkeypatch.setattr(similarity, "penultimate", lambda *a, **k: pytest.fail("computed again"))
    again_index, again, note = similarity.neighbour_bank(trained, dataset.train, NORMALIZE, folders=(tmp_path,))
    assert torch.equal(again_index, index) and torch.equal(again, first) and not note  # half precision, as remembered
    monkeypatch.setattr(similarity, "penultimate", computed)
    for path in tmp_path.glob("bank-*.pt"):
        path.write_bytes(b"junk")
    _, broken, note = similarity.neighbour_bank(trained, dataset.train, NORMALIZE, folders=(tmp_path,))
    assert torch.equal(broken, first)  # computed again, not read from the junk, and the page is told so
    assert "neighbour features" in note and "was not used" in note and "computed again" in note
    other = Net(num_classes=3).eval()  # another model has another key: nothing stale is found
    _, theirs, _ = similarity.neighbour_bank(other, dataset.train, NORMALIZE, save_to=tmp_path)
    assert theirs.shape[1] == 84 and len(list(tmp_path.glob("bank-*.pt"))) == 2
