"""d2lstyle.course.checks: each check accepts the reference and the book's definitions, and rejects the
common wrong answers with a message that says what is wrong."""

import pytest
import torch
from torchvision.transforms import functional as TF

import d2lstyle
from d2lstyle import book
from d2lstyle.course import checks

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def flat(X):
    n, c, h, w = X.shape
    return X.reshape(n, c, h * w)  # (n, c, hw)


def dv(X):
    return X[:, :, 1:, :] - X[:, :, :-1, :]


def dh(X):
    return X[:, :, :, 1:] - X[:, :, :, :-1]


# --------------------------------------------------------------------------- the book's definitions
# d2lstyle.book is the chapter's code; these only adapt its signatures to the exercises'.

book_gram, book_content_loss, book_style_loss, book_tv_loss = book.gram, book.content_loss, book.style_loss, book.tv_loss
book_preprocess, book_postprocess = book.preprocess, book.postprocess  # postprocess truncates


def book_extract_features(X, net, content_layers, style_layers):
    """The book's loop, with the arguments in the exercise's (and the package's) order."""
    return book.extract_features(X, content_layers, style_layers, net)


def book_compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings):
    """The book's compute_loss with the weights of ``settings`` instead of its globals."""
    contents_l = [book_content_loss(Y_hat, Y) * settings.content_weight
                  for Y_hat, Y in zip(contents_Y_hat, contents_Y)]
    styles_l = [book_style_loss(Y_hat, Y) * settings.style_weight
                for Y_hat, Y in zip(styles_Y_hat, styles_Y_gram)]
    tv_l = book_tv_loss(X) * settings.tv_weight
    l = sum(styles_l + contents_l + [tv_l])
    return contents_l, styles_l, tv_l, l


ACCEPTED = [
    (checks.check_gram, d2lstyle.gram, "agrees with d2lstyle.gram on 4 inputs"),
    (checks.check_content_loss, d2lstyle.content_loss, "agrees with d2lstyle.book.content_loss"),
    (checks.check_content_loss, book_content_loss, "agrees"),
    (checks.check_style_loss, d2lstyle.style_loss, "agrees with d2lstyle.style_loss"),
    (checks.check_tv_loss, d2lstyle.tv_loss, "agrees with d2lstyle.book.tv_loss"),
    (checks.check_tv_loss, book_tv_loss, "agrees"),
    (checks.check_tv_l2, checks.tv_l2, "agrees"),
    (checks.check_covariance, checks.covariance, "agrees"),
    (checks.check_mean_std, checks.mean_std, "agrees"),
    (checks.check_preprocess, d2lstyle.preprocess, "agrees with d2lstyle.preprocess"),
    (checks.check_preprocess, book_preprocess, "agrees"),
    (checks.check_postprocess, d2lstyle.postprocess, "agrees"),
    (checks.check_postprocess, book_postprocess, "within one grey level"),
    (checks.check_extract_features, d2lstyle.extract_features, "agrees"),
    (checks.check_extract_features, book_extract_features, "agrees"),
    (checks.check_compute_loss, d2lstyle.compute_loss, "agrees"),
    (checks.check_compute_loss, book_compute_loss, "agrees"),
    (checks.check_adain, checks.adain, "agrees"),
    (checks.check_layer_names, lambda: list(d2lstyle.LAYER_NAMES), "the 37 names"),
]


@pytest.mark.parametrize("check, fn, printed", ACCEPTED,
                         ids=[f"{c.__name__}-{getattr(f, '__module__', '')}.{getattr(f, '__name__', '')}"
                              for c, f, _ in ACCEPTED])
def test_accepts_reference_and_book(check, fn, printed, capsys):
    check(fn)
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and printed in out and out.count("\n") == 1


def test_book_style_loss_rejected_for_a_batch():
    # The book's style_loss inherits its gram's one-image reshape: a batch gets the wrong value.
    with pytest.raises(AssertionError, match=r"^style_loss, input Y_hat of shape \(2, 4, 5, 6\)"):
        checks.check_style_loss(book_style_loss)


def test_book_gram_accepted_for_one_image_and_rejected_for_a_batch(capsys):
    checks.check_gram(book_gram, batch=False)
    assert "OK: gram agrees with d2lstyle.gram on 2 inputs" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"^gram is not batch-safe: .*\(2, 4, 5, 6\).*"
                                             r"returned shape \(4, 4\), expected \(2, 4, 4\)"):
        checks.check_gram(book_gram)


# --------------------------------------------------------------------------- wrong answers

def gram_hw(X):
    return flat(X) @ flat(X).transpose(1, 2) / (X.shape[2] * X.shape[3])


def gram_unscaled(X):
    return flat(X) @ flat(X).transpose(1, 2)


def gram_positions(X):
    n, c, h, w = X.shape
    return flat(X).transpose(1, 2) @ flat(X) / (c * h * w)


def gram_summed_over_batch(X):
    n, c, h, w = X.shape
    G = sum(f @ f.T for f in flat(X)) / (c * h * w)
    return G.expand(n, c, c)


def gram_numpy(X):
    F = flat(X)[0].detach().numpy()
    return F @ F.T / X[0].numel()


def gram_no_grad(X):
    with torch.no_grad():
        return d2lstyle.gram(X)


def gram_in_place(X):
    X.mul_(1.0)  # touches the caller's tensor (an in-place op on a leaf that requires grad fails)
    return d2lstyle.gram(X)


def gram_float32(X):
    return d2lstyle.gram(X.float())


def gram_crashes(X):
    return X.view(3, -1, 7)


def gram_todo(X):
    # YOUR CODE HERE
    raise NotImplementedError()


def mutating_gram(X):
    X.data.add_(1)
    return d2lstyle.gram(X)


def sum_not_mean(Y_hat, Y):
    return torch.square(Y_hat - Y.detach()).sum()


def half_mean(Y_hat, Y):
    return 0.5 * torch.square(Y_hat - Y.detach()).mean()


def not_detached(Y_hat, Y):
    return torch.square(Y_hat - Y).mean()


def returns_float(Y_hat, Y):
    return torch.square(Y_hat - Y.detach()).mean().item()


def no_mean(Y_hat, Y):
    return torch.square(Y_hat - Y.detach())


def abs_not_square(Y_hat, Y):
    return (Y_hat - Y.detach()).abs().mean()


def style_sum(Y_hat, gram_Y):
    return torch.square(d2lstyle.gram(Y_hat) - gram_Y.detach()).sum()


def style_hw(Y_hat, gram_Y):
    return torch.square(d2lstyle.gram(Y_hat, "hw") - gram_Y.detach()).mean()


def style_not_detached(Y_hat, gram_Y):
    return torch.square(d2lstyle.gram(Y_hat) - gram_Y).mean()


def tv_rows_only(X):
    return 0.5 * dv(X).abs().mean()


def tv_columns_only(X):
    return 0.5 * dh(X).abs().mean()


def tv_no_half(X):
    return dv(X).abs().mean() + dh(X).abs().mean()


def tv_sum(X):
    return 0.5 * (dv(X).abs().sum() + dh(X).abs().sum())


def tv_squared(X):
    return 0.5 * (dv(X).square().mean() + dh(X).square().mean())


def tv_roll(X):
    return 0.5 * ((X.roll(1, 2) - X).abs().mean() + (X.roll(1, 3) - X).abs().mean())


def tv_means_swapped(X):
    return 0.5 * (dv(X).abs().sum() / dh(X).numel() + dh(X).abs().sum() / dv(X).numel())


def cov_uncentred(Y):
    return flat(Y) @ flat(Y).transpose(1, 2) / flat(Y).shape[2]


def cov_unbiased(Y):
    F = flat(Y) - flat(Y).mean(2, keepdim=True)
    return F @ F.transpose(1, 2) / (F.shape[2] - 1)


def cov_global_mean(Y):
    F = flat(Y) - flat(Y).mean()
    return F @ F.transpose(1, 2) / F.shape[2]


def cov_book_shape(Y):  # the book's gram pattern: right for a batch of one, (c, c)
    F = Y.reshape(Y.shape[1], -1)
    F = F - F.mean(1, keepdim=True)
    return F @ F.T / F.shape[1]


def ms_no_eps(Y):
    return torch.cat([flat(Y).mean(2), flat(Y).std(2, correction=0)], 1)


def ms_unbiased(Y):
    return torch.cat([flat(Y).mean(2), (flat(Y).var(2) + 1e-5).sqrt()], 1)


def ms_variance(Y):
    return torch.cat([flat(Y).mean(2), flat(Y).var(2, correction=0) + 1e-5], 1)


def ms_stacked(Y):
    return torch.stack([flat(Y).mean(2), (flat(Y).var(2, correction=0) + 1e-5).sqrt()], 2)


def pre_unnormalised(img, image_shape):
    return TF.to_tensor(TF.resize(img, list(image_shape))).unsqueeze(0)


def pre_no_batch(img, image_shape):
    return TF.normalize(TF.to_tensor(TF.resize(img, list(image_shape))), MEAN, STD)


def pre_pil_order(img, image_shape):
    return TF.normalize(TF.to_tensor(img.resize(image_shape)), MEAN, STD).unsqueeze(0)


def pre_swapped(img, image_shape):
    return TF.normalize(TF.to_tensor(TF.resize(img, list(image_shape))), STD, MEAN).unsqueeze(0)


def post_no_clamp(X):
    x = X[0] * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    return TF.to_pil_image(x)  # out-of-range values wrap around in the conversion to 8 bits


def post_tensor(X):
    return torch.clamp(X[0] * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1), 0, 1)


def post_not_undone(X):
    return TF.to_pil_image(torch.clamp(X[0], 0, 1))


def ef_before_module(X, net, content_layers, style_layers):
    contents, styles = [], []
    for i in range(len(net)):
        if i in style_layers:
            styles.append(X)
        if i in content_layers:
            contents.append(X)
        X = net[i](X)
    return contents, styles


def ef_swapped(X, net, content_layers, style_layers):
    return book_extract_features(X, net, content_layers, style_layers)[::-1]


def ef_no_grad(X, net, content_layers, style_layers):
    with torch.no_grad():
        return book_extract_features(X, net, content_layers, style_layers)


def cl_style_weight_on_content(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings):
    return book_compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram,
                             settings.with_overrides(content_weight=settings.style_weight))


def cl_no_tv_in_total(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings):
    contents_l, styles_l, tv_l, l = book_compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y,
                                                      styles_Y_gram, settings)
    return contents_l, styles_l, tv_l, l - tv_l


def cl_unweighted_style(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings):
    return book_compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram,
                             settings.with_overrides(style_weight=1.0))


def adain_not_centred(x, y, eps=1e-5):
    s = lambda t: torch.sqrt(t.var((2, 3), keepdim=True, correction=0) + eps)  # noqa: E731
    return s(y) * x / s(x) + y.mean((2, 3), keepdim=True)


def adain_unbiased(x, y, eps=1e-5):  # torch's default std, eps outside the root
    s = lambda t: t.std((2, 3), keepdim=True) + eps  # noqa: E731
    m = lambda t: t.mean((2, 3), keepdim=True)  # noqa: E731
    return s(y) * (x - m(x)) / s(x) + m(y)


def adain_global(x, y, eps=1e-5):
    return (y.std() + eps) * (x - x.mean()) / (x.std() + eps) + y.mean()


def names_no_pool():
    return [name for name in d2lstyle.LAYER_NAMES if not name.startswith("pool")]


def names_short():
    return list(d2lstyle.LAYER_NAMES[:-1])


REJECTED = [
    (checks.check_gram, gram_hw, r"off by a factor of c = 3 \(yours is 3 times too large\): divide by c·h·w"),
    (checks.check_gram, gram_unscaled, r"off by a factor of c·h·w = 96 .*divide F Fᵀ by c·h·w"),
    (checks.check_gram, gram_positions, r"returned shape \(1, 32, 32\).*expected \(c, c\) = \(3, 3\) per "
                                        r"image, got \(h·w, h·w\): reshape to \(channels, h·w\)"),
    (checks.check_gram, gram_summed_over_batch, r"every image got the batch's summed Gram matrix"),
    (checks.check_gram, gram_numpy, r"returned ndarray .*expected a torch.Tensor"),
    (checks.check_gram, gram_no_grad, r"carries no gradient back to X"),
    (checks.check_gram, gram_float32, r"returned dtype torch.float32 .*float64.*expected torch.float64"),
    (checks.check_gram, mutating_gram, r"modified its input \(argument 1\)"),
    (checks.check_content_loss, sum_not_mean, r"off by a factor of n·c·h·w = 96 .*mean of the squared "
                                              r"differences, not their sum"),
    (checks.check_content_loss, half_mean, r"off by a factor of 2 \(yours is 2 times too small\)"),
    (checks.check_content_loss, not_detached, r"sends a gradient into the target .*use Y.detach\(\)"),
    (checks.check_content_loss, returns_float, r"returned float .*expected a scalar tensor"),
    (checks.check_content_loss, no_mean, r"returned a tensor of shape \(1, 3, 4, 8\).*expected a scalar"),
    (checks.check_content_loss, abs_not_square, r"mean absolute difference; square the differences"),
    (checks.check_style_loss, style_sum, r"off by a factor of c·c = 9 .*not their sum"),
    (checks.check_style_loss, style_hw, r"divided by h·w only; divide by c·h·w as gram_Y was"),
    (checks.check_style_loss, style_not_detached, r"use gram_Y.detach\(\)"),
    (checks.check_tv_loss, tv_rows_only, r"only the vertical half .*add the horizontal one"),
    (checks.check_tv_loss, tv_columns_only, r"only the horizontal half .*add the vertical one"),
    (checks.check_tv_loss, tv_no_half, r"off by a factor of 2 \(yours is 2 times too large\): the book's "
                                       r"TV is HALF"),
    (checks.check_tv_loss, tv_sum, r"sum instead of mean"),
    (checks.check_tv_loss, tv_squared, r"you took squared differences; this TV uses absolute differences"),
    (checks.check_tv_loss, tv_roll, r"wrap around the border"),
    (checks.check_tv_loss, tv_means_swapped, r"divided by each other's number of differences"),
    (checks.check_tv_l2, d2lstyle.tv_loss, r"you took absolute differences; this TV uses squared"),
    (checks.check_covariance, cov_uncentred, r"this is the Gram matrix: subtract each channel's mean"),
    (checks.check_covariance, cov_unbiased, r"off by a factor of h·w/\(h·w−1\) = 1.03226 .*not h·w − 1"),
    (checks.check_covariance, cov_global_mean, r"centre each channel by its own mean"),
    (checks.check_covariance, cov_book_shape, r"not batch-safe: .*\(2, 4, 5, 6\).*expected \(2, 4, 4\)"),
    (checks.check_mean_std, ms_no_eps, r"needs the small eps: sqrt\(var \+ 1e-5\)"),
    (checks.check_mean_std, ms_unbiased, r"divides by h·w − 1 \(unbiased\)"),
    (checks.check_mean_std, ms_variance, r"these are variances; take the square root"),
    (checks.check_mean_std, ms_stacked, r"returned shape \(1, 3, 2\).*expected \(1, 6\): the c means first"),
    (checks.check_preprocess, pre_unnormalised, r"the values are in \[0, 1\]: normalise each channel"),
    (checks.check_preprocess, pre_no_batch, r"expected \(1, 3, 12, 20\): add the batch dimension"),
    (checks.check_preprocess, pre_pil_order, r"image_shape is \(height, width\)"),
    (checks.check_preprocess, pre_swapped, r"mean and std are swapped"),
    (checks.check_postprocess, post_no_clamp, r"outside \[0, 1\] are wrong .*clamp to \[0, 1\]"),
    (checks.check_postprocess, post_tensor, r"returned a tensor .*expected a PIL image"),
    (checks.check_postprocess, post_not_undone, r"undo the normalisation as X \* std \+ mean"),
    (checks.check_extract_features, ef_before_module, r"contents\[0\] is the output of module 6, "
                                                      r"expected module 7"),
    (checks.check_extract_features, ef_swapped, r"contents and styles are swapped"),
    (checks.check_extract_features, ef_no_grad, r"carry no gradient back to X"),
    (checks.check_compute_loss, cl_style_weight_on_content, r"the content term is multiplied by the style "
                                                            r"weight \(10000\)"),
    (checks.check_compute_loss, cl_no_tv_in_total, r"the total l leaves out the TV term"),
    (checks.check_compute_loss, cl_unweighted_style, r"the style term is not multiplied by its weight"),
    (checks.check_adain, adain_not_centred, r"centre x first"),
    (checks.check_adain, adain_unbiased, r"sigma divides by h·w − 1 \(unbiased std\)"),
    (checks.check_adain, adain_global, r"the statistics are per channel"),
    (checks.check_layer_names, names_no_pool, r"index 4 should be 'pool1', got 'conv2_1': block 1 ends "
                                              r"with a pooling layer"),
    (checks.check_layer_names, names_short, r"returned 36 names; VGG19's features have 37"),
]


@pytest.mark.parametrize("check, fn, message", REJECTED,
                         ids=[f"{c.__name__}-{f.__name__}" for c, f, _ in REJECTED])
def test_rejects_common_wrong_answers(check, fn, message, capsys):
    with pytest.raises(AssertionError, match=message) as error:
        check(fn)
    assert fn.__name__ in str(error.value) or check is checks.check_layer_names
    assert error.value.__cause__ is None
    assert "OK:" not in capsys.readouterr().out


def test_a_crash_becomes_a_one_line_message():
    with pytest.raises(AssertionError, match=r"^gram_crashes crashed on input X of shape \(1, 3, 4, 8\), "
                                             r"float32: RuntimeError: shape '\[3, -1, 7\]' is invalid") as error:
        checks.check_gram(gram_crashes)
    assert error.value.__cause__ is None and error.value.__suppress_context__
    assert "\n" not in str(error.value)


def test_an_in_place_op_on_the_input_is_reported_as_a_crash_with_its_cause():
    with pytest.raises(AssertionError, match=r"gram_in_place crashed on input .*RuntimeError: a leaf "
                                             r"Variable that requires grad"):
        checks.check_gram(gram_in_place)


def test_an_unwritten_exercise_says_so():
    with pytest.raises(NotImplementedError, match=r"gram_todo is not written yet: replace "
                                                  r"`raise NotImplementedError\(\)` with your code"):
        checks.check_gram(gram_todo)


def test_a_check_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_extract_features(d2lstyle.extract_features)  # builds seeded random networks
    torch.testing.assert_close(torch.rand(3), expected)


# --------------------------------------------------------------------------- the references themselves
# Each reference statistic against a definition that shares no code with it: torch.cov, torch's
# instance normalisation, values worked out by hand. Mutating a reference makes these fail.

def test_covariance_reference_is_torch_cov_over_positions():
    Y = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.stack([torch.cov(y.reshape(3, 20), correction=0) for y in Y])  # (2, 3, 3)
    torch.testing.assert_close(checks.covariance(Y), expected, rtol=1e-12, atol=1e-12)


def test_covariance_reference_by_hand():
    # One image, two channels at two positions: (1, 3) and (2, 6). Means 2 and 4; centred
    # (-1, 1) and (-2, 2); covariance entries: 1, 2, 2, 4 (each sum over 2 positions / 2).
    Y = torch.tensor([[1.0, 3.0], [2.0, 6.0]], dtype=torch.float64).reshape(1, 2, 1, 2)
    assert checks.covariance(Y)[0].tolist() == [[1.0, 2.0], [2.0, 4.0]]


def test_mean_std_reference_is_instance_norm_statistics():
    Y = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 1
    stats = checks.mean_std(Y)  # (2, 6)
    mean, std = stats[:, :3, None, None], stats[:, 3:, None, None]
    # instance_norm normalises with the same population variance and eps = 1e-5
    torch.testing.assert_close((Y - mean) / std, torch.nn.functional.instance_norm(Y, eps=1e-5),
                               rtol=1e-12, atol=1e-12)


def test_mean_std_reference_by_hand():
    # Values 1 and 3: mean 2, population variance 1, std sqrt(1 + 1e-5).
    Y = torch.tensor([1.0, 3.0], dtype=torch.float64).reshape(1, 1, 1, 2)
    assert checks.mean_std(Y)[0].tolist() == pytest.approx([2.0, (1 + 1e-5) ** 0.5], rel=1e-15)


def test_adain_reference_is_instance_norm_rescaled():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) * 2 + 1
    y = torch.randn(2, 3, 6, 3, generator=gen, dtype=torch.float64) * 5 - 2
    sigma_y = torch.sqrt(y.var((2, 3), keepdim=True, correction=0) + 1e-5)
    expected = torch.nn.functional.instance_norm(x, eps=1e-5) * sigma_y + y.mean((2, 3), keepdim=True)
    torch.testing.assert_close(checks.adain(x, y), expected, rtol=1e-12, atol=1e-12)


def test_adain_and_mean_std_use_one_std_convention():
    # AdaIN's output takes on exactly the style's statistics, as mean_std measures them.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 2, 4, 4, generator=gen, dtype=torch.float64) * 4 + 3
    # sigma(AdaIN) = sigma_y * sqrt(var_x) / sqrt(var_x + eps): equal up to eps / var_x
    torch.testing.assert_close(checks.mean_std(checks.adain(x, y)), checks.mean_std(y), rtol=1e-4, atol=0)
    assert "correction=0" in checks.STD_CONVENTION


def test_tv_l2_reference_by_hand():
    # A 2x2 image [[0, 1], [2, 4]]: vertical differences 2 and 3, horizontal 1 and 2.
    # 0.5 * (mean(4, 9) + mean(1, 4)) = 0.5 * (6.5 + 2.5) = 4.5
    X = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).reshape(1, 1, 2, 2)
    assert checks.tv_l2(X).item() == 4.5
