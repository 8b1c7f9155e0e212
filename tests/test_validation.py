"""One validation for the library and the command line: each bad setting is refused before any
work, by transfer() and by the d2lstyle command alike, in the same one line; plus the run's other
edges (devices, memory, an output that is an input, numpy images, --quiet, start-up)."""

import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import d2lstyle
import d2lstyle.memory
import d2lstyle.style_transfer
from d2lstyle.cli import main
from d2lstyle.errors import DeviceMemoryError, SettingError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(style)
    return content, style


@pytest.fixture
def no_network_built(monkeypatch):
    def too_soon(*args, **kwargs):
        raise AssertionError("the network was built before the settings were checked")

    monkeypatch.setattr(d2lstyle.style_transfer, "vgg19", too_soon)


# (transfer's keyword arguments, the command line's options, the one line both give)
REFUSED = [
    (dict(num_steps=0), ["--steps", "0"], r"num_steps (--steps) must be a whole number at least 1, not 0"),
    (dict(size=-3), ["--size", "-3"], r"size (--size) must be a whole number at least 1, not -3"),
    (dict(style_weight=-1.0), ["--style-weight", "-1"],
     r"style_weight (--style-weight) must be a finite number >= 0, not -1.0"),
    (dict(content_weight=math.inf), ["--content-weight", "inf"],
     r"content_weight (--content-weight) must be a finite number >= 0, not inf"),
    (dict(tv_weight=math.nan), ["--tv-weight", "nan"],
     r"tv_weight (--tv-weight) must be a finite number >= 0, not nan"),
    (dict(seed=-1), ["--seed", "-1"],
     r"seed (--seed) must be a whole number between 0 and 9223372036854775807, not -1"),
    (dict(style_layer_weights=[1, 1, 1, -1.0, 1]), ["--style-layer-weights=1,1,1,-1,1"],
     r"style_layer_weights (--style-layer-weights) must be finite numbers >= 0, not -1.0"),
    (dict(style_layer_weights=[1, 1, float("nan"), 1, 1]), ["--style-layer-weights", "1,1,nan,1,1"],
     r"style_layer_weights (--style-layer-weights) must be finite numbers >= 0, not nan"),
    (dict(style_layer_weights=[1.0, 1.0]), ["--style-layer-weights", "1,1"],
     r"style_layer_weights (--style-layer-weights) has 2 weight(s) for 5 style layer(s) (relu1_1, "
     r"relu2_1, relu3_1, relu4_1, relu5_1): give one per style layer"),
    (dict(preset="picasso"), ["--preset", "picasso"],
     r"unknown preset 'picasso' (--preset): choose one of d2l, gatys"),
    (dict(device="toaster"), ["--device", "toaster"],
     r"device (--device) 'toaster' is not a device name; available here: "),
    (dict(device="cuda:7"), ["--device", "cuda:7"], r"device (--device) 'cuda:7': no such CUDA device here"),
    (dict(device="meta"), ["--device", "meta"],
     r"device (--device) 'meta': d2lstyle runs on cpu, cuda and mps, not meta; available here: "),
]


@pytest.mark.parametrize("kwargs, options, message", REFUSED, ids=[" ".join(o) for _, o, _ in REFUSED])
def test_api_and_cli_refuse_with_the_same_line(kwargs, options, message, pair, tmp_path, capsys,
                                               no_network_built):
    if "cuda" in message and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(SettingError) as caught:
        d2lstyle.transfer(*pair, weights=None, progress=False, **kwargs)
    api = str(caught.value)
    assert api.startswith(message) and "\n" not in api

    out = tmp_path / "out.png"
    out.write_bytes(b"an older result")
    status = main([str(pair[0]), str(pair[1]), "-o", str(out), "--weights", "none", *options])
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"d2lstyle: error: {api}\n"  # the very same words
    assert out.read_bytes() == b"an older result"  # nothing written, the old output intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "out.png", "style.png"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(content_layers=[], style_layers=[]),
     "content_layers and style_layers are both empty: give at least one layer"),
    (dict(lr=0.0), "lr must be a finite number > 0, not 0.0"),
    (dict(style_layer_weights=0.5), "style_layer_weights (--style-layer-weights) must be a list "
                                    "of numbers, one per style layer, not 0.5"),
    (dict(style_layers=["relu1_1"], style_layer_weights=[1, math.inf]),
     "style_layer_weights (--style-layer-weights) has 2 weight(s) for 1 style layer(s) (relu1_1): "
     "give one per style layer"),
    (dict(normalize_style_layers="yes"),
     "normalize_style_layers (--normalize-style-layers) must be True or False, not 'yes'"),
    (dict(optimizer="sgd"), "optimizer must be 'adam' or 'lbfgs', not 'sgd'"),
    (dict(image_shape=(30, 0)), "image_shape must be a whole number at least 1, not 0"),
    (dict(num_steps=2.5), "num_steps (--steps) must be a whole number at least 1, not 2.5"),
    (dict(init="zeros"), "init must be 'content', 'noise', a PIL image or a tensor, not 'zeros'"),
    (dict(init=torch.zeros(2, 8, 8)), "init tensor must be (3, h, w) or (1, 3, h, w), not (2, 8, 8)"),
    (dict(init=torch.full((1, 3, 8, 8), math.nan)), "init tensor has non-finite values (nan or inf)"),
])
def test_api_only_settings_refused_in_one_line(kwargs, message, pair, no_network_built):
    with pytest.raises(SettingError, match=f"^{re.escape(message)}$"):
        d2lstyle.transfer(*pair, weights=None, progress=False, **kwargs)


def test_texture_synthesis_needs_no_content_layer(pair):
    torch.manual_seed(0)
    result = d2lstyle.transfer(*pair, net=d2lstyle.vgg19(None), content_layers=[], size=32,
                               num_steps=2, progress=False)
    assert result.history[-1]["content"] == 0.0 and result.history[-1]["style"] > 0


# ----------------------------------------------------------------------------- memory

def test_too_large_a_size_for_the_cpu_is_refused_up_front(pair, tmp_path, capsys, no_network_built):
    # 200000 px on the longest side: a step would need terabytes, far more than any machine here.
    with pytest.raises(DeviceMemoryError, match=r"^not enough memory on cpu at 200000x150000 pixels "
                                                r"\(a step needs about [0-9.]+ GiB, [0-9.]+ GiB is "
                                                r"free\); try size=\d+ \(--size \d+\)$"):
        d2lstyle.transfer(*pair, weights=None, size=200000, device="cpu", progress=False)
    out = tmp_path / "out.png"
    out.write_bytes(b"an older result")
    status = main([str(pair[0]), str(pair[1]), "-o", str(out), "--weights", "none", "--size", "200000",
                   "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "not enough memory on cpu" in err
    assert out.read_bytes() == b"an older result"


def test_the_size_suggested_does_fit(pair, monkeypatch):
    layers = d2lstyle.get_preset("gatys").style_layers + d2lstyle.get_preset("gatys").content_layers
    free = 2**30
    with pytest.raises(DeviceMemoryError) as caught:
        d2lstyle.memory.check_fits(torch.device("cpu"), (1500, 2000), layers, free_bytes=free)
    size = int(re.search(r"--size (\d+)", str(caught.value)).group(1))
    h, w = round(1500 * size / 2000), size
    d2lstyle.memory.check_fits(torch.device("cpu"), (h, w), layers, free_bytes=free)  # no error


def test_cpu_free_memory_is_read_from_the_kernel():
    free = d2lstyle.memory.free_memory(torch.device("cpu"))
    with open("/proc/meminfo") as meminfo:
        total = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < free <= total


# ----------------------------------------------------------------------------- outputs and inputs

@pytest.mark.parametrize("which", [0, 1])
def test_output_that_is_an_input_is_refused(which, pair, tmp_path, capsys):
    target = pair[which]
    before = target.read_bytes()
    # the same file by another name: through '..' and a symbolic link
    link = tmp_path / "link.png"
    link.symlink_to(target)
    for name in (tmp_path / "sub" / ".." / target.name, link):
        (tmp_path / "sub").mkdir(exist_ok=True)
        status = main([str(pair[0]), str(pair[1]), "-o", str(name), "--weights", "none"])
        err = capsys.readouterr().err
        assert status == 2
        label = ("CONTENT", "STYLE")[which]
        assert err.startswith(f"d2lstyle: error: {name}: is the {label} image") and err.count("\n") == 1
        assert target.read_bytes() == before


# ----------------------------------------------------------------------------- images as arrays

def test_numpy_images_are_accepted(pair):
    content = np.asarray(Image.open(pair[0]))  # (24, 32, 3) uint8
    style = np.asarray(Image.open(pair[1])).astype(np.float32) / 255  # floats in 0..1
    torch.manual_seed(0)
    net = d2lstyle.vgg19(None)
    from_arrays = d2lstyle.transfer(content, style, net=net, size=32, num_steps=2, progress=False)
    from_files = d2lstyle.transfer(*pair, net=net, size=32, num_steps=2, progress=False)
    assert from_arrays.history[-1]["total"] == pytest.approx(from_files.history[-1]["total"], rel=1e-3)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 5, 2), np.uint8), r"a numpy image must be \(h, w\), \(h, w, 3\) or \(h, w, 4\), not \(4, 5, 2\)"),
    (np.full((4, 5), np.nan), r"a numpy image must be uint8 \(0..255\) or finite floats \(0..1\), not float64 with nan"),
    ([[0, 1], [1, 0]], r"an image must be a path, an http\(s\) URL, a PIL image or a numpy array, not a list"),
])
def test_bad_image_objects_get_one_line(bad, message, pair):
    with pytest.raises(d2lstyle.ImageLoadError, match=f"^{message}"):
        d2lstyle.transfer(bad, pair[1], weights=None, progress=False)


# ----------------------------------------------------------------------------- messages

def test_quiet_hides_the_libraries_warnings(pair, tmp_path, capsys, monkeypatch):
    real = d2lstyle.style_transfer.transfer

    def chatty(*args, **kwargs):
        warnings.warn("some library is unhappy", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(d2lstyle.style_transfer, "transfer", chatty)
    out = tmp_path / "out.png"
    assert main([str(pair[0]), str(pair[1]), "-o", str(out), "--weights", "none", "--size", "32",
                 "--steps", "1", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert out.is_file()


def test_start_up_reaches_main_before_torch():
    # Ctrl-C during start-up: the command line's own module imports no torch, so the import that
    # takes seconds happens inside main(), whose handler turns Ctrl-C into one line and exit 130.
    code = "import sys, d2lstyle.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_ctrl_c_while_importing_is_one_line(pair, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name in ("images", "d2lstyle.images") or (args and args[2] and "demo_images" in args[2]):
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    status = main([str(pair[0]), str(pair[1]), "-o", str(tmp_path / "out.png"), "--weights", "none"])
    assert status == 130
    assert capsys.readouterr().err == "d2lstyle: interrupted; nothing written\n"
    assert not (tmp_path / "out.png").exists()


def test_weights_file_with_wrong_shapes_names_the_key(tmp_path):
    torch.manual_seed(0)
    state = d2lstyle.vgg19(None).state_dict()
    state["5.weight"] = torch.zeros(128, 64, 5, 5)
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    with pytest.raises(d2lstyle.WeightsUnavailableError,
                       match=rf"^weights file '{re.escape(str(path))}' is not a VGG19 state dict: "
                             r"5.weight has shape \(128, 64, 5, 5\), expected \(128, 64, 3, 3\)$"):
        d2lstyle.vgg19(path)


def test_torchvision_weights_are_unpickled_without_code(monkeypatch):
    from torchvision.models import VGG19_Weights

    seen = {}

    def get_state_dict(self, *args, **kwargs):
        seen.update(kwargs)
        raise OSError("simulated: no network")

    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict", get_state_dict)
    with pytest.raises(d2lstyle.WeightsUnavailableError, match="simulated: no network"):
        d2lstyle.vgg19("torchvision")
    assert seen.get("weights_only") is True
