"""transfer(): the 'd2l' preset against a re-statement of the book's loop, and the loop's promises."""

import copy
import math

import numpy as np
import pytest
import torch

import d2lstyle
from d2lstyle.book import book_loop, book_loss
from d2lstyle import transfer, vgg19
from d2lstyle.objective import Objective

SHAPE = (40, 56)  # small, so that 60 book steps take a second or two


def test_d2l_preset_matches_book_loop(net, images):
    # In float64, so that the two loops can agree to 1e-10 over 60 steps. In float32 they cannot,
    # whatever the code: Adam's first steps move every pixel by about lr whatever its gradient's
    # size, so a last-bit difference in a gradient near zero flips that pixel's move, and the
    # totals drift apart by ~1% within 60 steps (measured when gram's backward became one product).
    net64 = copy.deepcopy(net).double()
    _, book = book_loop(net64, *images, SHAPE, num_epochs=60, device=torch.device("cpu"))
    ours = transfer(*images, preset="d2l", net=net64, image_shape=SHAPE, num_steps=60, progress=False)
    totals = [record["total"] for record in ours.history]
    assert len(totals) == 60
    assert ours.tensor.dtype == torch.float64
    assert book[-1] < 0.95 * book[0], "the book's loop should make progress over 60 steps"
    np.testing.assert_allclose(totals, book, rtol=1e-10)


def test_d2l_loss_and_gradient_match_book_in_float32(net, images):
    # The float32 path at the content image: the same loss, and the same gradient to rounding.
    settings = d2lstyle.get_preset("d2l").with_overrides(image_shape=SHAPE)
    objective = Objective(net, *images, SHAPE, SHAPE, settings, torch.device("cpu"))
    X = objective.content_X.clone().requires_grad_()
    ours = objective.compute_loss(X, *objective.extract_features(X))[3]
    ours.backward()

    Y = objective.content_X.clone().requires_grad_()
    book = book_loss(net, *images, Y)
    book.backward()
    assert ours.item() == pytest.approx(book.item(), rel=1e-6)
    torch.testing.assert_close(X.grad, Y.grad, rtol=1e-4, atol=1e-5 * Y.grad.abs().max().item())


def test_d2l_preset_is_the_chapter():
    preset = d2lstyle.get_preset("d2l")
    assert preset.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "conv5_1")
    assert preset.content_layers == ("relu4_4",)
    assert (preset.content_weight, preset.style_weight, preset.tv_weight) == (1, 1e4, 10)
    assert (preset.optimizer, preset.lr, preset.num_steps) == ("adam", 0.3, 500)
    assert (preset.lr_decay_step, preset.lr_decay, preset.image_shape) == (50, 0.8, (300, 450))


def test_history_records(net, images):
    result = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=5, progress=False)
    assert [r["step"] for r in result.history] == list(range(5))
    for record in result.history:
        assert {"content", "style", "tv", "total", "time"} <= set(record)
        assert all(isinstance(record[k], float) for k in ("content", "style", "tv", "total", "time"))
        assert math.isclose(record["total"], record["content"] + record["style"] + record["tv"],
                            rel_tol=1e-5)
    times = [r["time"] for r in result.history]
    assert times == sorted(times)
    # Initialised from the content image, so the first content term is exactly zero.
    assert result.history[0]["content"] == 0.0
    assert result.tensor.shape == (1, 3) + SHAPE
    assert result.image.size == (SHAPE[1], SHAPE[0])
    assert result.stopped is None


def test_same_seed_same_result(net, images):
    runs = [transfer(*images, net=net, size=40, num_steps=4, init="noise", seed=seed, progress=False)
            for seed in (3, 3, 4)]
    assert torch.equal(runs[0].tensor, runs[1].tensor)
    assert not torch.equal(runs[0].tensor, runs[2].tensor)


def test_callers_rng_untouched(net, images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    transfer(*images, net=net, size=32, num_steps=1, init="noise", progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_net_argument_not_modified(net, images):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    transfer(*images, net=net, size=32, num_steps=2, progress=False)
    assert len(net) == 37
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_stop_at_loss(net, images):
    full = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=20, progress=False)
    target = full.history[10]["total"]
    early = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=20,
                     stop_at_loss=target, progress=False)
    assert len(early.history) <= 11
    assert early.history[-1]["total"] <= target
    assert all(r["total"] > target for r in early.history[:-1])
    assert "reached loss" in early.stopped


def test_non_finite_loss_keeps_last_finite_image(net, images):
    kept = {}

    def poison(step, X, record):
        if step == 3:
            kept["X"] = X.clone()
            X.fill_(float("nan"))  # X shares the image's storage: the next loss is NaN

    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=10,
                          callback=poison, progress=False)
    assert len(result.history) == 5
    assert "non-finite at step 4" in result.stopped
    assert torch.isfinite(result.tensor).all()
    assert torch.equal(result.tensor, kept["X"])


def test_keyboard_interrupt_returns_result_so_far(net, images):
    def interrupt(step, X, record):
        if step == 2:
            raise KeyboardInterrupt

    result = transfer(*images, net=net, size=32, num_steps=50, callback=interrupt, progress=False)
    assert len(result.history) == 3
    assert "interrupted" in result.stopped
    assert result.image.size[0] == 32 or result.image.size[1] == 32


def test_callback_can_stop(net, images):
    result = transfer(*images, net=net, size=32, num_steps=50, progress=False,
                      callback=lambda step, X, record: step == 4)
    assert len(result.history) == 5
    assert "callback" in result.stopped


def test_size_keeps_content_aspect(net, images):
    result = transfer(*images, net=net, size=40, num_steps=1, progress=False)
    assert result.image.size == (40, 30)  # the content is 80 x 60


def test_bad_settings(net, images):
    with pytest.raises(d2lstyle.SettingError, match=r"^num_steps \(--steps\) must be a whole number at least 1, not 0$"):
        transfer(*images, net=net, num_steps=0, progress=False)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        transfer(*images, net=net, preset="fast", progress=False)
    with pytest.raises(ValueError, match="init must be"):
        transfer(*images, net=net, init="zeros", progress=False)
    with pytest.raises(ValueError, match="unknown layer 'relu9_1'"):
        transfer(*images, net=net, style_layers=["relu9_1"], progress=False)
    with pytest.raises(d2lstyle.SettingError, match=r"^size \(--size\) must be a whole number at least 1, not 0$"):
        transfer(*images, net=net, size=0, progress=False)


def test_named_layers_equal_indices(net, images):
    kwargs = dict(net=net, size=32, num_steps=3, progress=False)
    by_name = transfer(*images, content_layers=["relu4_2"], style_layers=["relu1_1", "relu3_1"], **kwargs)
    by_index = transfer(*images, content_layers=[22], style_layers=[1, 11], **kwargs)
    assert by_name.history == [dict(r, time=a["time"]) for r, a in zip(by_index.history, by_name.history)]


@pytest.fixture(scope="module")
def original_net():
    return vgg19("original")


def luminance(img):
    return np.asarray(img.convert("L"), dtype=np.float64)


def correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_end_to_end_original_weights(original_net):
    """Real weights, small real pictures: the style term falls a lot and the content stays."""
    content, style = d2lstyle.images.offline_demo_images()
    result = transfer(content, style, net=original_net, size=64, num_steps=40, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["style"] < 0.1 * first["style"]
    # The content stays: the result's brightness pattern still follows the photograph's (a
    # correlation near 1), far more than it follows the photograph upside down.
    photo = luminance(content.resize(result.image.size))
    ours = luminance(result.image)
    assert correlation(ours, photo) > 0.4  # 0.49 with the 'gatys' preset's relative style terms
    assert correlation(ours, photo) > correlation(ours, photo[::-1]) + 0.3
    # and the colours moved towards the style's (the swirls are far darker than the photo)
    assert ours.mean() < photo.mean()
