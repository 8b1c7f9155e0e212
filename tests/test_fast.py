"""fast=True, init from an image, stop_at_loss, out-of-memory messages and the benchmark's smoke run.

A random network on tiny images, so that each test takes seconds. The losses are checked against
d2lstyle.book's re-statement of the book, not against the package's own loss code.
"""

import re
import time

import pytest
import torch

from d2lstyle import book
from d2lstyle import preprocess, transfer, vgg19
from d2lstyle.cli import main as cli_main
import d2lstyle.speed.plan
import d2lstyle.style_transfer
from d2lstyle.objective import Objective
from d2lstyle.speed.lbfgs import converged
from d2lstyle.speed.plan import schedule
from d2lstyle.errors import DeviceMemoryError
from d2lstyle.memory import (PEAK_OVER_STORED, bytes_per_pixel, fitting_size,
                             stored_values_per_pixel)
from d2lstyle.presets import get_preset

SHAPE = (32, 48)


def book_loss(net, content_img, style_img, X) -> float:
    """The book's total loss at the image X, float32, as a number."""
    with torch.no_grad():
        return float(book.book_loss(net, content_img, style_img, X.float()))


# ----------------------------------------------------------------------------- fast=True

def test_fast_reaches_the_preset_loss_of_the_same_objective(net, images, monkeypatch):
    monkeypatch.setattr(d2lstyle.speed.plan, "MIN_COARSE_SIDE", 16)  # a coarse level at this tiny size
    slow = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=30, lr=0.1,
                     progress=False)
    target = book_loss(net, *images, slow.tensor)
    start = book_loss(net, *images, preprocess(images[0], SHAPE))
    assert target < 0.9 * start  # the 30 Adam steps made progress
    # A generous cap: with 100 steps (25 coarse, 50 full-size evaluations) the target was reached
    # on an AVX2 CPU but not on an AVX-512 one, whose rounding sends the line searches elsewhere.
    fast = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=300, fast=True,
                    stop_at_loss=target, progress=False)
    assert "reached loss" in fast.stopped
    assert fast.tensor.shape == (1, 3) + SHAPE
    # Same objective: the book's float32 loss of fast's image is at most the target, and fast's
    # last full-size record is that loss (it stopped before updating the image).
    assert book_loss(net, *images, fast.tensor) <= target * (1 + 1e-5)
    assert fast.history[-1]["total"] == pytest.approx(book_loss(net, *images, fast.tensor), rel=1e-4)
    # Coarse to fine: half-size steps first, then full-size ones, numbered on.
    shapes = [r["shape"] for r in fast.history]
    assert shapes[0] == (16, 24) and shapes[-1] == SHAPE
    assert shapes == sorted(shapes)
    assert [r["step"] for r in fast.history] == list(range(len(fast.history)))
    assert fast.settings.optimizer == "lbfgs"


def test_schedule_halves_the_sides_down_to_the_smallest_useful_level():
    # budgets: half of num_steps at the full size and at each level of a quarter of the size or
    # less, a quarter of it at half the size
    assert schedule((150, 225), 200, 16) == [((38, 56), 100), ((75, 112), 50), ((150, 225), 100)]
    assert schedule((300, 450), 500, 16) == [((38, 56), 250), ((75, 112), 250), ((150, 225), 125),
                                             ((300, 450), 250)]
    assert schedule((40, 60), 9, 16) == [((40, 60), 5)]  # 20 < MIN_COARSE_SIDE
    assert schedule((300, 450), 8, 100) == [((150, 225), 2), ((300, 450), 4)]  # deep layers


def test_converged_by_hand():
    # the best of the last 10 losses against the best before them, relative to the latter
    assert not converged([5.0] * 10, 0.1)  # not enough evaluations to tell
    assert converged([100.0, 50.0] + [49.0] * 10, 0.1)  # 2% better: below a 10% tolerance
    assert not converged([100.0, 50.0] + [49.0] * 9 + [40.0], 0.1)  # 20% better
    assert converged([100.0, 50.0] + [60.0] * 10, 0.0)  # worse trial points: no gain at all


def test_coarse_levels_end_when_converged_so_num_steps_is_only_a_cap(net, images, monkeypatch):
    monkeypatch.setattr(d2lstyle.speed.plan, "MIN_COARSE_SIDE", 16)

    def coarse_history(num_steps):
        """The records of the coarse level; the run is stopped at the first full-size one."""
        result = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=num_steps,
                          fast=True, progress=False,
                          callback=lambda step, X, record: record["shape"] == SHAPE)
        return [(r["shape"], r["total"]) for r in result.history[:-1]]

    generous, very_generous = coarse_history(200), coarse_history(1000)
    assert {shape for shape, _ in generous} == {(16, 24)}
    assert len(generous) < 50  # its cap: a quarter of num_steps
    assert generous == very_generous  # the cap did not set the work, the problem did


def test_a_non_finite_loss_at_a_coarse_level_ends_only_that_level(net, images, monkeypatch):
    """A line search's trial point that overflows at a coarse level must not end the whole run
    with a coarse, blurred image: the level keeps its best image and the full size goes on."""
    monkeypatch.setattr(d2lstyle.speed.plan, "MIN_COARSE_SIDE", 16)
    real = d2lstyle.style_transfer.train_lbfgs

    def overflowing_at_coarse_levels(X, objective, steps, monitor, tolerance):
        if tuple(X.shape[-2:]) != SHAPE:
            real(X, objective, 2, monitor, tolerance)  # two evaluations, then an overflow
            return "loss became non-finite at step 2; kept the best finite image"
        return real(X, objective, steps, monitor, tolerance)

    monkeypatch.setattr(d2lstyle.style_transfer, "train_lbfgs", overflowing_at_coarse_levels)
    result = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=8, fast=True,
                      progress=False)
    shapes = [tuple(r["shape"]) for r in result.history]
    assert shapes[:2] == [(16, 24)] * 2 and shapes[-1] == SHAPE
    assert result.stopped is None and result.tensor.shape[-2:] == SHAPE


def test_reduced_precision_keeps_grams_and_losses_float32(net, images):
    settings = get_preset("d2l").with_overrides(image_shape=SHAPE)
    seen = []
    hook = net[28].register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    try:
        objective = Objective(net, *images, SHAPE, SHAPE, settings, torch.device("cpu"),
                              amp_dtype=torch.bfloat16)
        X = preprocess(images[1], SHAPE).requires_grad_(True)
        contents_l, styles_l, tv_l, l = objective.compute_loss(X, *objective.extract_features(X))
        l.backward()
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # the network did run in bfloat16
    assert all(G.dtype == torch.float32 for G in objective.styles_Y_gram)
    assert all(t.dtype == torch.float32 for t in contents_l + styles_l + [tv_l, l])
    assert X.grad.dtype == torch.float32
    # bfloat16 keeps about 3 significant digits: the loss is close to the float32 one
    assert float(l.detach()) == pytest.approx(book_loss(net, *images, X.detach()), rel=0.05)


def test_stop_at_loss_in_reduced_precision_is_confirmed_in_float32(net, images, monkeypatch):
    monkeypatch.setattr(d2lstyle.speed.plan, "autocast_dtype", lambda device: torch.bfloat16)
    slow = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=10, lr=0.1,
                     progress=False)
    target = book_loss(net, *images, slow.tensor)
    fast = transfer(*images, preset="d2l", net=net, image_shape=SHAPE, num_steps=100, fast=True,
                    stop_at_loss=target, progress=False)
    assert "reached loss" in fast.stopped
    assert "total_float32" in fast.history[-1]
    assert book_loss(net, *images, fast.tensor) <= target * (1 + 1e-5)


# ----------------------------------------------------------------------------- init

def test_init_from_an_image_or_a_tensor(net, images):
    start = {}

    def keep_first(step, X, record):
        start.setdefault("X", X.clone())
        return True  # stop after the first step

    picture = images[1]
    transfer(*images, net=net, image_shape=SHAPE, init=picture, num_steps=3, callback=keep_first,
             progress=False)
    assert torch.equal(start.pop("X"), preprocess(picture, SHAPE))
    # A tensor of another size is resized bilinearly: a constant image stays that constant.
    constant = torch.full((3, 10, 10), 0.25)
    result = transfer(*images, net=net, image_shape=SHAPE, init=constant, num_steps=1,
                      callback=keep_first, progress=False)
    assert torch.allclose(start.pop("X"), torch.full((1, 3) + SHAPE, 0.25))
    assert result.tensor.shape == (1, 3) + SHAPE
    # init is only read: continuing from a result leaves that result as it was
    before = result.tensor.clone()
    transfer(*images, net=net, image_shape=SHAPE, init=result.tensor, num_steps=2, progress=False)
    assert torch.equal(result.tensor, before)


def test_bad_init(net, images):
    with pytest.raises(ValueError, match="init must be 'content', 'noise', a PIL image or a tensor, not 'zeros'"):
        transfer(*images, net=net, init="zeros", progress=False)
    with pytest.raises(ValueError, match="not a list"):
        transfer(*images, net=net, init=[1, 2], progress=False)
    with pytest.raises(ValueError, match=r"init tensor must be \(3, h, w\) or \(1, 3, h, w\), not \(2, 3, 8, 8\)"):
        transfer(*images, net=net, init=torch.zeros(2, 3, 8, 8), progress=False)


# ----------------------------------------------------------------------------- memory

def test_stored_values_per_pixel_by_hand():
    assert stored_values_per_pixel(["conv1_1"]) == 3 + 64
    # conv1_1, relu1_1, conv1_2, relu1_2 at full size, pool1 at a quarter of the pixels
    assert stored_values_per_pixel(["pool1"]) == 3 + 4 * 64 + 64 / 4
    assert stored_values_per_pixel(["conv2_1"]) == 3 + 4 * 64 + 64 / 4 + 128 / 4
    assert bytes_per_pixel(["conv1_1"], element_size=4) == 67 * 4 * PEAK_OVER_STORED


def test_fitting_size_fits_the_budget():
    layers = list(get_preset("d2l").style_layers)
    budget = 2**30
    side = fitting_size((300, 450), budget, layers)
    h, w = round(300 * side / 450), side
    assert bytes_per_pixel(layers) * h * w <= budget
    assert bytes_per_pixel(layers) * (h + 8) * (w + 12) > budget  # and not much smaller than needed
    assert side % 8 == 0


def raise_oom(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; ...)")


def test_out_of_memory_becomes_one_line_with_a_size_that_fits(net, images, monkeypatch):
    monkeypatch.setattr(d2lstyle.style_transfer, "run_plan", raise_oom)
    monkeypatch.setattr(d2lstyle.style_transfer, "free_memory", lambda device: 2**30)
    layers = list(get_preset("d2l").style_layers) + list(get_preset("d2l").content_layers)
    expected = fitting_size((300, 450), 0.9 * 2**30, layers)
    with pytest.raises(DeviceMemoryError,
                       match=rf"^out of memory on cpu at 450x300 pixels \(a step needs about "
                             rf"[0-9.]+ GiB, 1.0 GiB is free\); try size={expected} "
                             rf"\(--size {expected}\)$") as caught:
        transfer(*images, preset="d2l", net=net, progress=False)
    assert "\n" not in str(caught.value)


def test_cli_out_of_memory_is_one_line(images, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(d2lstyle.style_transfer, "run_plan", raise_oom)
    monkeypatch.setattr(d2lstyle.style_transfer, "free_memory", lambda device: 2**30)
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    images[0].save(content)
    images[1].save(style)
    out = tmp_path / "out.png"
    status = cli_main([str(content), str(style), "-o", str(out), "--weights", "none", "--quiet",
                       "--fast", "--size", "400"])
    _, err = capsys.readouterr()
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("d2lstyle: error: out of memory on cpu at 400x300")
    assert "try size=" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_help_describes_fast(capsys):
    assert cli_main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--fast" in text and "same objective" in text and "not yet" not in text


# ----------------------------------------------------------------------------- benchmark

def test_benchmark_quick_smoke(capsys):
    from d2lstyle.benchmark import harness as benchmark

    assert benchmark.main(["--quick", "--markdown", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| book loop (Adam, float32) | 32x48 | 8 |" in out
    assert "| transfer(preset='d2l', fast=True) | 32x48 |" in out
    assert "bare VGG19 fwd+bwd" in out and "| 48x72 |" in out
    assert "feed-forward stylize (s)" in out
    assert re.search(r"^\| 32x48 \| [0-9.]+ \| [0-9.]+ \| \d+ \| \d+x \|$", out, re.M), out


def test_benchmark_sizes_parse():
    from d2lstyle.benchmark.harness import parse_sizes

    assert parse_sizes("150x225:200,300x450:500") == [((150, 225), 200), ((300, 450), 500)]
    with pytest.raises(Exception, match="bad size '150:200'"):
        parse_sizes("150:200")


def test_step_against_floor_takes_the_bare_pass_out_of_the_step(monkeypatch, images):
    # The floor is timed between two steps of the preset's loop: a slow floor (100 s on a
    # simulated clock, so the test does not depend on how busy the machine is) must not show up
    # in the step's own time, and the ratio is step / floor.
    import d2lstyle.loop
    from d2lstyle.benchmark import harness as benchmark

    offset = [0.0]
    real_clock = time.perf_counter

    class Clock:  # the loop's clock, 100 s ahead after each simulated floor
        @staticmethod
        def perf_counter():
            return real_clock() + offset[0]

    def slow_floor(net, X, device, amp_dtype=None):
        offset[0] += 100.0
        return 100.0

    monkeypatch.setattr(d2lstyle.loop, "time", Clock)
    monkeypatch.setattr(benchmark, "bare_pass_seconds", slow_floor)
    torch.manual_seed(0)
    step, bare, ratio = benchmark.step_against_floor(vgg19(weights=None), *images, (32, 48),
                                                     torch.device("cpu"), reps=2)
    assert bare == 100.0
    assert 0 < step < 50, step  # a real step of a fraction of a second, not 100 s more
    assert ratio == pytest.approx(step / 100.0)
