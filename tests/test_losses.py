"""Tests for d2lstyle.losses: content_loss, gram, style_loss, relative_style_loss, tv_loss.

Inputs are small enough to check by hand; gradients are checked in float64.
"""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from d2lstyle.losses import content_loss, gram, gram_size, relative_style_loss, style_loss, tv_loss
from d2lstyle.speed.gram import fast_gram


def _rand(*shape, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator, dtype=dtype)


# Two channels over a 1 x 2 image: channel 0 is [1, 2], channel 1 is [3, 4].
# F F^T = [[1*1 + 2*2, 1*3 + 2*4], [3*1 + 4*2, 3*3 + 4*4]] = [[5, 11], [11, 25]].
TWO_CHANNELS = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)


class TestContentLoss:
    def test_smoke(self):
        loss = content_loss(torch.zeros(2, 3, 4, 5), torch.ones(2, 3, 4, 5))
        assert loss.shape == ()
        assert loss.item() == 1.0

    def test_hand_value(self):
        Y_hat = torch.zeros(1, 1, 2, 2)
        Y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        # (1 + 4 + 9 + 16) / 4 = 7.5
        assert content_loss(Y_hat, Y).item() == 7.5

    def test_zero_when_equal(self):
        Y = _rand(2, 3, 4, 5)
        assert content_loss(Y.clone(), Y).item() == 0.0

    def test_no_gradient_to_target(self):
        Y_hat = torch.zeros(1, 1, 2, 2, requires_grad=True)
        Y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
        content_loss(Y_hat, Y).backward()
        assert Y.grad is None
        # d/dY_hat of mean((Y_hat - Y)^2) = 2 (Y_hat - Y) / 4 = -Y / 2
        assert torch.equal(Y_hat.grad, torch.tensor([[[[-0.5, -1.0], [-1.5, -2.0]]]]))

    def test_gradcheck(self):
        Y_hat = _rand(2, 3, 4, 5, seed=1).requires_grad_()
        Y = _rand(2, 3, 4, 5, seed=2)
        assert gradcheck(content_loss, (Y_hat, Y))
        assert gradgradcheck(content_loss, (Y_hat, Y))


class TestGram:
    def test_hand_value_chw(self):
        # [[5, 11], [11, 25]] / (c * h * w = 2 * 1 * 2 = 4)
        expected = torch.tensor([[[1.25, 2.75], [2.75, 6.25]]])
        assert torch.equal(gram(TWO_CHANNELS), expected)

    def test_hand_value_hw(self):
        # [[5, 11], [11, 25]] / (h * w = 2)
        expected = torch.tensor([[[2.5, 5.5], [5.5, 12.5]]])
        assert torch.equal(gram(TWO_CHANNELS, normalize="hw"), expected)

    def test_shape_batch(self):
        assert gram(_rand(3, 4, 5, 6)).shape == (3, 4, 4)

    def test_shape_single_image(self):
        assert gram(_rand(4, 5, 6)).shape == (4, 4)

    def test_symmetric(self):
        G = gram(_rand(3, 4, 5, 6))
        assert torch.equal(G, G.transpose(1, 2))

    def test_batched_equals_looped(self):
        X = _rand(3, 4, 5, 6)
        G = gram(X)
        for i in range(len(X)):
            torch.testing.assert_close(G[i], gram(X[i : i + 1])[0])
            torch.testing.assert_close(G[i], gram(X[i]))

    def test_normalizations_differ_by_c(self):
        # Powers of two make both divisions exact, so the ratio is exactly c.
        c = 4
        X = _rand(2, c, 4, 8)
        assert torch.equal(gram(X, normalize="hw"), c * gram(X, normalize="chw"))

    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_independent_of_image_size(self, normalize):
        X = _rand(2, 3, 5, 6)
        tiled = X.repeat(1, 1, 2, 2)  # (2, 3, 10, 12): the image tiled 2 x 2
        torch.testing.assert_close(gram(tiled, normalize), gram(X, normalize))

    @pytest.mark.parametrize("shape", [(1, 2, 3, 3), (2, 3, 3)])
    def test_exception(self, shape):
        with pytest.raises(ValueError, match="normalize must be 'chw' or 'hw', not 'c'"):
            gram(torch.zeros(shape), normalize="c")

    @pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 3, 4, 5), (3, 4, 5)])
    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_gradcheck(self, normalize, shape):
        # gram and its own derivative against finite differences, for a batch, one image and an
        # unbatched map.
        X = _rand(*shape).requires_grad_()
        assert gradcheck(lambda X: gram(X, normalize), (X,))
        assert gradgradcheck(lambda X: gram(X, normalize), (X,))

    def test_hand_gradient(self):
        # With "hw", G = F F^T / (h*w) and here F = [[1, 2], [3, 4]], h*w = 2. For
        # L = sum(G * W), dL/dF = (W + W^T) F / 2, and (W + W^T) / 2 = [[1, 1], [1, 1]].
        X = TWO_CHANNELS.double().requires_grad_()
        W = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
        (gram(X, normalize="hw")[0] * W).sum().backward()
        # [[1, 1], [1, 1]] @ [[1, 2], [3, 4]] = [[4, 6], [4, 6]]
        assert torch.equal(X.grad, torch.tensor([[[[4.0, 6.0]], [[4.0, 6.0]]]], dtype=torch.float64))

    def test_gradient_matches_autograd_of_the_product(self):
        X = _rand(1, 6, 7, 8).requires_grad_()
        W = _rand(6, 6, seed=3)
        (gram(X)[0] * W).sum().backward()
        Y = X.detach().clone().requires_grad_()
        F = Y.reshape(6, 56)
        ((F @ F.T) / (6 * 56) * W).sum().backward()
        torch.testing.assert_close(X.grad, Y.grad, rtol=1e-12, atol=0)


class TestFastGram:
    """d2lstyle.speed.gram.fast_gram: the same values and gradients as gram, one-product backward."""

    @pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 3, 4, 5), (3, 4, 5)])
    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_equals_gram(self, normalize, shape):
        X = _rand(*shape)
        torch.testing.assert_close(fast_gram(X, normalize), gram(X, normalize), rtol=1e-12, atol=0)

    @pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 3, 4, 5), (3, 4, 5)])
    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_gradcheck(self, normalize, shape):
        # Its backward is written by hand: check it, and its own derivative, against finite
        # differences, for a batch, one image and an unbatched map.
        X = _rand(*shape).requires_grad_()
        assert gradcheck(lambda X: fast_gram(X, normalize), (X,))
        assert gradgradcheck(lambda X: fast_gram(X, normalize), (X,))

    def test_hand_gradient(self):
        # As TestGram.test_hand_gradient: (W + W^T) F / 2 = [[4, 6], [4, 6]].
        X = TWO_CHANNELS.double().requires_grad_()
        W = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
        (fast_gram(X, normalize="hw")[0] * W).sum().backward()
        assert torch.equal(X.grad, torch.tensor([[[[4.0, 6.0]], [[4.0, 6.0]]]], dtype=torch.float64))

    def test_gradient_matches_gram_with_a_non_symmetric_upstream(self):
        X = _rand(2, 6, 7, 8).requires_grad_()
        W = _rand(2, 6, 6, seed=3)  # not symmetric: both halves of the backward matter
        (fast_gram(X) * W).sum().backward()
        Y = X.detach().clone().requires_grad_()
        (gram(Y) * W).sum().backward()
        torch.testing.assert_close(X.grad, Y.grad, rtol=1e-12, atol=0)

    def test_exception(self):
        with pytest.raises(ValueError, match="normalize must be 'chw' or 'hw', not 'c'"):
            fast_gram(torch.zeros(1, 2, 3, 3), normalize="c")


class TestStyleLoss:
    def test_hand_value(self):
        # gram(TWO_CHANNELS) = [[1.25, 2.75], [2.75, 6.25]] against zeros:
        # (1.5625 + 7.5625 + 7.5625 + 39.0625) / 4 = 55.75 / 4 = 13.9375
        assert style_loss(TWO_CHANNELS, torch.zeros(2, 2)).item() == 13.9375

    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_zero_at_own_gram(self, normalize):
        Y_hat = _rand(2, 3, 4, 5)
        assert style_loss(Y_hat, gram(Y_hat, normalize), normalize).item() == 0.0

    def test_target_broadcasts(self):
        Y_hat, Y = _rand(1, 3, 4, 5, seed=1), _rand(1, 3, 6, 7, seed=2)
        gram_Y = gram(Y)  # (1, 3, 3)
        assert torch.equal(style_loss(Y_hat, gram_Y[0]), style_loss(Y_hat, gram_Y))

    def test_batch_against_one_target(self):
        # A (c, c) target is every image's target: the loss is the mean of per-image losses.
        Y_hat, gram_Y = _rand(3, 3, 4, 5, seed=1), gram(_rand(3, 6, 7, seed=2))
        looped = torch.stack([style_loss(Y_hat[i : i + 1], gram_Y) for i in range(3)]).mean()
        torch.testing.assert_close(style_loss(Y_hat, gram_Y), looped)

    def test_no_gradient_to_target(self):
        Y_hat = _rand(1, 2, 3, 3, seed=1).requires_grad_()
        gram_Y = gram(_rand(1, 2, 3, 3, seed=2)).requires_grad_()
        style_loss(Y_hat, gram_Y).backward()
        assert gram_Y.grad is None
        assert Y_hat.grad is not None

    def test_exception(self):
        with pytest.raises(ValueError, match="normalize must be"):
            style_loss(TWO_CHANNELS, torch.zeros(2, 2), normalize="xyz")

    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_gradcheck(self, normalize):
        Y_hat = _rand(2, 3, 4, 5, seed=1).requires_grad_()
        gram_Y = gram(_rand(3, 6, 7, seed=2), normalize)
        assert gradcheck(lambda Y_hat: style_loss(Y_hat, gram_Y, normalize), (Y_hat,))
        assert gradgradcheck(lambda Y_hat: style_loss(Y_hat, gram_Y, normalize), (Y_hat,))


class TestRelativeStyleLoss:
    def test_hand_value(self):
        # gram(TWO_CHANNELS) = [[1.25, 2.75], [2.75, 6.25]]: its mean square is 55.75 / 4 = 13.9375,
        # which is also the book's style loss of a zero image against it, so the ratio is 1.
        A = gram(TWO_CHANNELS)
        assert gram_size(A).item() == 13.9375
        assert relative_style_loss(torch.zeros(1, 2, 1, 2), A).item() == 1.0

    def test_twice_the_features(self):
        # Doubling the features multiplies the Gram matrix by 4: ||4A - A||^2 / ||A||^2 = 9.
        Y = _rand(1, 3, 4, 5)
        assert relative_style_loss(2 * Y, gram(Y)).item() == pytest.approx(9.0, rel=1e-12)

    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_same_for_any_feature_scale_and_normalization(self, normalize):
        # Features 255 times larger (the original VGG19 against torchvision's, roughly) make the
        # book's style loss 255^4 times larger and leave the relative one as it was.
        Y_hat, Y = _rand(2, 3, 4, 5, seed=1), _rand(1, 3, 6, 7, seed=2)
        relative = relative_style_loss(Y_hat, gram(Y))
        torch.testing.assert_close(relative_style_loss(255 * Y_hat, gram(255 * Y, normalize),
                                                       normalize), relative)
        torch.testing.assert_close(style_loss(255 * Y_hat, gram(255 * Y)),
                                   style_loss(Y_hat, gram(Y)) * 255 ** 4)

    def test_zero_target_is_not_divided(self):
        Y_hat = _rand(1, 2, 3, 3)
        zeros = torch.zeros(2, 2, dtype=torch.float64)
        assert gram_size(zeros).item() == 1.0
        assert torch.equal(relative_style_loss(Y_hat, zeros), style_loss(Y_hat, zeros))

    def test_no_gradient_to_target(self):
        Y_hat = _rand(1, 2, 3, 3, seed=1).requires_grad_()
        gram_Y = gram(_rand(1, 2, 3, 3, seed=2)).requires_grad_()
        relative_style_loss(Y_hat, gram_Y).backward()
        assert gram_Y.grad is None
        assert Y_hat.grad is not None

    @pytest.mark.parametrize("normalize", ["chw", "hw"])
    def test_gradcheck(self, normalize):
        Y_hat = _rand(2, 3, 4, 5, seed=1).requires_grad_()
        gram_Y = gram(_rand(3, 6, 7, seed=2), normalize)
        assert gradcheck(lambda Y_hat: relative_style_loss(Y_hat, gram_Y, normalize), (Y_hat,))
        assert gradgradcheck(lambda Y_hat: relative_style_loss(Y_hat, gram_Y, normalize), (Y_hat,))


class TestTVLoss:
    def test_smoke(self):
        assert tv_loss(_rand(2, 3, 4, 5)).shape == ()

    def test_constant_is_zero(self):
        assert tv_loss(torch.full((2, 3, 4, 5), 0.7)).item() == 0.0

    def test_horizontal_ramp(self):
        h, w = 4, 6
        X = torch.arange(w, dtype=torch.float32).expand(1, 3, h, w)  # X[..., i, j] = j
        # Vertical neighbours are equal, horizontal ones differ by 1: 0.5 * (0 + 1)
        assert tv_loss(X).item() == 0.5

    def test_vertical_ramp(self):
        h, w = 4, 6
        X = torch.arange(h, dtype=torch.float32).view(h, 1).expand(1, 3, h, w)  # X[..., i, j] = i
        assert tv_loss(X).item() == 0.5

    def test_checkerboard(self):
        i, j = torch.meshgrid(torch.arange(5), torch.arange(6), indexing="ij")
        X = ((i + j) % 2).float().expand(1, 3, 5, 6)  # 0/1 checkerboard
        # Every neighbour differs by 1 both ways: 0.5 * (1 + 1)
        assert tv_loss(X).item() == 1.0

    @pytest.mark.parametrize("a", [3.0, -2.5, 0.0])
    def test_scales_with_absolute_value(self, a):
        X = _rand(2, 3, 4, 5)
        torch.testing.assert_close(tv_loss(a * X), abs(a) * tv_loss(X))

    def test_batched_equals_mean_of_looped(self):
        X = _rand(3, 3, 4, 5)
        looped = torch.stack([tv_loss(X[i : i + 1]) for i in range(3)]).mean()
        torch.testing.assert_close(tv_loss(X), looped)

    def test_gradcheck(self):
        # Random values: no two neighbours are within gradcheck's eps of each other, so |.| is smooth.
        X = _rand(2, 3, 4, 5).requires_grad_()
        assert gradcheck(tv_loss, (X,))
