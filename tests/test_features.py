"""Tests for d2lstyle.features.extract_features, on a randomly initialised VGG19."""

import pytest
import torch
from torch import nn

from d2lstyle.features import extract_features
from d2lstyle.vgg import layer_index, truncate


def _image(n=1, h=32, w=32, seed=0):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


class _MustNotRun(nn.Module):
    def forward(self, X):
        raise AssertionError("extract_features ran a module past the deepest layer asked for")


def test_smoke(net):
    contents, styles = extract_features(_image(), net, ["relu4_2"], ["relu1_1", "relu2_1"])
    assert isinstance(contents, list) and isinstance(styles, list)
    assert len(contents) == 1 and len(styles) == 2


def test_shapes(net):
    # Each pool halves h and w: pool1 before block 2, pool3 before block 4 (8 = 64 / 2**3).
    with torch.no_grad():
        (conv1_1, relu4_2), (relu2_1,) = extract_features(_image(h=64, w=96), net,
                                                          ["conv1_1", "relu4_2"], ["relu2_1"])
    assert conv1_1.shape == (1, 64, 64, 96)
    assert relu2_1.shape == (1, 128, 32, 48)
    assert relu4_2.shape == (1, 512, 8, 12)


def test_order_as_given(net):
    X = _image()
    with torch.no_grad():
        contents, styles = extract_features(X, net, ["relu2_1", "conv1_1"],
                                            ["relu3_1", "relu1_1", "relu2_1"])
        singles = {name: extract_features(X, net, [name], [])[0][0]
                   for name in ("conv1_1", "relu1_1", "relu2_1", "relu3_1")}
    assert [t.shape[1] for t in contents] == [128, 64]
    assert [t.shape[1] for t in styles] == [256, 64, 128]
    for got, name in zip(contents, ["relu2_1", "conv1_1"]):
        assert torch.equal(got, singles[name]), name
    for got, name in zip(styles, ["relu3_1", "relu1_1", "relu2_1"]):
        assert torch.equal(got, singles[name]), name


def test_names_and_indices_agree(net):
    X = _image()
    names = (["conv4_2"], ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"])
    indices = ([21], [0, 5, 10, 19, 28])
    with torch.no_grad():
        by_name = extract_features(X, net, *names)
        by_index = extract_features(X, net, *indices)
    for a, b in zip(by_name[0] + by_name[1], by_index[0] + by_index[1]):
        assert torch.equal(a, b)


def test_mixed_names_and_indices(net):
    X = _image()
    with torch.no_grad():
        (a, b), _ = extract_features(X, net, ["relu1_1", 1], [])
    assert torch.equal(a, b)


def test_conv_outputs_are_not_overwritten(net):
    # Our ReLUs are not in-place, so a conv layer read alongside its ReLU keeps negative values.
    with torch.no_grad():
        (conv, relu), _ = extract_features(_image(), net, ["conv1_1", "relu1_1"], [])
    assert (conv < 0).any()
    assert torch.equal(relu, conv.clamp(min=0))


def test_stops_at_deepest_layer(net):
    deepest = layer_index("relu2_1")
    guarded = nn.Sequential(*net[: deepest + 1], *[_MustNotRun() for _ in net[deepest + 1:]])
    with torch.no_grad():
        contents, styles = extract_features(_image(), guarded, ["conv1_1"], ["relu2_1", "relu1_1"])
    assert styles[0].shape == (1, 128, 16, 16)
    # And the guard does fire when a later layer is asked for.
    with pytest.raises(AssertionError, match="past the deepest layer"):
        extract_features(_image(), guarded, ["conv2_2"], [])


def test_empty_layers(net):
    guarded = nn.Sequential(*[_MustNotRun() for _ in net])
    assert extract_features(_image(), guarded, [], []) == ([], [])


def test_layer_past_end_of_truncated_net(net):
    short = truncate(net, ["relu2_1"])  # 7 modules
    with pytest.raises(ValueError, match="layer 10 is past the end of a network of 7 modules"):
        extract_features(_image(), short, ["relu2_1"], ["conv3_1"])


def test_unknown_layer(net):
    with pytest.raises(ValueError, match="unknown layer 'relu4_5'"):
        extract_features(_image(), net, ["relu4_5"], [])


def test_batch_equals_singles(net):
    X = _image(n=2, seed=1)
    content_layers, style_layers = ["relu4_2"], ["conv1_1", "relu3_1"]
    with torch.no_grad():
        batched = extract_features(X, net, content_layers, style_layers)
        singles = [extract_features(X[i : i + 1], net, content_layers, style_layers) for i in range(2)]
    for k, features in enumerate(batched[0] + batched[1]):
        for i, single in enumerate(singles):
            torch.testing.assert_close(features[i : i + 1], (single[0] + single[1])[k])


def test_gradient_reaches_input(net):
    X = _image().requires_grad_()
    contents, styles = extract_features(X, net, ["relu2_1"], ["relu1_1"])
    (contents[0].sum() + styles[0].sum()).backward()
    assert X.grad is not None and X.grad.abs().sum() > 0
