"""Per-layer style weights (style_layer_weights, --style-layer-weights: Gatys et al.'s w_l) and
the layer normalisation (normalize_style_layers, --normalize-style-layers) in the objective,
transfer and the command line. The refused values are in tests/test_validation.py."""

import pytest
import torch

import d2lstyle.style_transfer
from d2lstyle import compute_loss, get_preset, gram, style_loss, transfer
from d2lstyle.cli import main
from d2lstyle.losses import relative_style_loss

TWO_LAYERS = ("relu1_1", "relu2_1")


def two_layer_toy(scale: float = 1000.0):
    """Style features of two layers, the second ``scale`` times the first (both images), as a
    deeper layer of the original VGG19 is larger: ``(styles_Y_hat, styles_Y_gram)``, float64."""
    generator = torch.Generator().manual_seed(0)
    Y_hat = torch.rand(1, 4, 5, 6, generator=generator, dtype=torch.float64)
    Y = torch.rand(1, 4, 7, 8, generator=generator, dtype=torch.float64)
    return [Y_hat, scale * Y_hat], [gram(Y), gram(scale * Y)]


def style_terms(settings, styles_Y_hat, styles_Y_gram):
    X = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    return compute_loss(X, [], styles_Y_hat, [], styles_Y_gram, settings)[1]


def settings(**overrides):
    return get_preset("gatys").with_overrides(**{"style_layers": TWO_LAYERS, "style_weight": 1.0,
                                                 "normalize_style_layers": False, **overrides})


def test_normalised_terms_are_equal_where_the_books_differ_by_the_scale_to_the_fourth():
    styles_Y_hat, styles_Y_gram = two_layer_toy(1000.0)
    book = style_terms(settings(), styles_Y_hat, styles_Y_gram)
    torch.testing.assert_close(book[1], book[0] * 1000.0 ** 4)  # the deeper layer is the loss
    normalised = style_terms(settings(normalize_style_layers=True), styles_Y_hat, styles_Y_gram)
    torch.testing.assert_close(normalised[1], normalised[0])
    torch.testing.assert_close(normalised[0], relative_style_loss(styles_Y_hat[0],
                                                                  styles_Y_gram[0]))


def test_layer_weights_multiply_each_term():
    styles_Y_hat, styles_Y_gram = two_layer_toy()
    plain = style_terms(settings(style_weight=3.0), styles_Y_hat, styles_Y_gram)
    weighted = style_terms(settings(style_weight=3.0, style_layer_weights=[2.0, 0.5]),
                           styles_Y_hat, styles_Y_gram)
    torch.testing.assert_close(weighted[0], 2.0 * plain[0])
    torch.testing.assert_close(weighted[1], 0.5 * plain[1])


def test_default_layer_weights_are_the_books_terms_bit_for_bit():
    styles_Y_hat, styles_Y_gram = two_layer_toy()
    ones = style_terms(settings(style_weight=10.0, style_layer_weights=(1, 1)), styles_Y_hat,
                       styles_Y_gram)
    default = style_terms(settings(style_weight=10.0), styles_Y_hat, styles_Y_gram)
    books = [style_loss(Y_hat, G) * 10.0 for Y_hat, G in zip(styles_Y_hat, styles_Y_gram)]
    for a, b, c in zip(ones, default, books):
        assert torch.equal(a, b) and torch.equal(b, c)


def test_compute_loss_refuses_a_weight_count_that_does_not_match():
    styles_Y_hat, styles_Y_gram = two_layer_toy()
    bad = settings().with_overrides(style_layer_weights=(1.0, 1.0, 1.0))  # not validated
    with pytest.raises(ValueError, match="3 style layer weights for 2 style layers"):
        style_terms(bad, styles_Y_hat, styles_Y_gram)


def test_a_layer_of_weight_zero_is_as_if_it_were_not_there(net, images):
    kwargs = dict(net=net, size=40, num_steps=3, progress=False)
    with_zero = transfer(*images, style_layer_weights=[1, 1, 0, 1, 1], **kwargs)
    without = transfer(*images, style_layers=["relu1_1", "relu2_1", "relu4_1", "relu5_1"],
                       **kwargs)
    assert [r["total"] for r in with_zero.history] == [r["total"] for r in without.history]
    assert torch.equal(with_zero.tensor, without.tensor)
    assert with_zero.settings.style_layer_weights == (1, 1, 0, 1, 1)


def test_normalisation_changes_the_run_and_is_recorded(net, images):
    kwargs = dict(net=net, size=40, num_steps=2, progress=False)
    plain = transfer(*images, normalize_style_layers=False, **kwargs)
    normalised = transfer(*images, **kwargs)  # the 'gatys' preset's default
    assert normalised.settings.normalize_style_layers is True
    assert plain.history[0]["style"] != normalised.history[0]["style"]


@pytest.mark.parametrize("options, weights, normalize", [
    ([], None, True),  # the 'gatys' preset's
    (["--style-layer-weights", "1,0.5,0,2,1", "--normalize-style-layers"],
     (1.0, 0.5, 0.0, 2.0, 1.0), True),
    (["--no-normalize-style-layers"], None, False),
])
def test_cli_options_reach_the_settings(options, weights, normalize, images, tmp_path,
                                        monkeypatch):
    seen = {}

    def fake_transfer(content, style, *, preset, **kwargs):
        seen["settings"] = preset
        raise KeyboardInterrupt  # enough: nothing is run

    monkeypatch.setattr(d2lstyle.style_transfer, "transfer", fake_transfer)
    paths = [tmp_path / "content.png", tmp_path / "style.png"]
    for img, path in zip(images, paths):
        img.save(path)
    main([*map(str, paths), "-o", str(tmp_path / "out.png"), "--quiet", *options])
    assert seen["settings"].style_layer_weights == weights
    assert seen["settings"].normalize_style_layers is normalize
