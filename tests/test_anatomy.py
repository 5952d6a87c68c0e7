"""The network's anatomy, read from the model: layers, costs, first filters, feature maps."""
import pytest
import torch

from core import anatomy
from core.data import DataConfig
from core.models import FastNet, Net
from core.transforms import normalizer


def test_the_tutorials_net_layer_by_layer():
    table = anatomy.layers(Net())
    assert [(layer.name, layer.kind, layer.output_shape) for layer in table] == [
        ("conv1", "Conv2d", (6, 28, 28)), ("pool", "MaxPool2d", (6, 14, 14)), ("conv2", "Conv2d", (16, 10, 10)),
        ("pool", "MaxPool2d", (16, 5, 5)), ("fc1", "Linear", (120,)), ("fc2", "Linear", (84,)),
        ("fc3", "Linear", (10,))]
    # conv1: 6 filters of 3×5×5 plus biases; each of its 6×28×28 outputs costs 75 multiply-adds
    assert table[0].parameters == 6 * 75 + 6 and table[0].mult_adds == 6 * 28 * 28 * 75
    assert table[4].mult_adds == 400 * 120
    assert sum(layer.parameters for layer in table) == sum(p.numel() for p in Net().parameters()) == 62006


def test_fastnet_counts_every_parameter_once_and_leaves_the_model_as_it_was():
    model = FastNet(width=8).train()
    table = anatomy.layers(model)
    assert model.training  # put back in training mode
    assert table[0].name == "whiten" and table[-1].name == "head" and table[-1].output_shape == (10,)
    assert sum(layer.parameters for layer in table) == sum(p.numel() for p in model.parameters())
    assert not model.whiten._forward_hooks  # hooks removed
    assert anatomy.convolutions(model) == ["whiten", "layer1.conv1", "layer1.conv2", "layer2.conv1",
                                           "layer2.conv2", "layer3.conv1", "layer3.conv2"]


def test_first_filters_are_the_rgb_convolutions_weights_as_pictures():
    model = Net()
    filters = anatomy.first_filters(model)
    assert filters.shape == (6, 3, 5, 5) and filters.dtype == torch.uint8
    assert all(f.min() == 0 and f.max() == 255 for f in filters)  # each stretched on its own
    weights = model.conv1.weight.detach()
    brightest = weights[2].flatten().argmax()
    assert filters[2].flatten()[brightest] == 255
    with pytest.raises(ValueError, match="no convolution"):
        anatomy.first_filters(torch.nn.Linear(3, 2))


def test_feature_maps_are_the_layers_output_per_channel():
    model = Net().eval()
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    normalize = normalizer(DataConfig(), "cpu")
    maps = anatomy.feature_maps(model, image, normalize, "conv2")
    assert maps.shape == (16, 10, 10) and maps.dtype == torch.uint8
    with torch.no_grad():
        out = model.conv2(model.pool(torch.relu(model.conv1(normalize(image.unsqueeze(0))))))[0]
    for c in range(16):  # the brightest pixel of each map is where that channel responds most
        assert maps[c].flatten()[out[c].flatten().argmax()] == 255
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        anatomy.feature_maps(model, image, normalize, "conv9")
