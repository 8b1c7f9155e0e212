"""check_train_loop (notebook 05's loop exercise): it accepts the book's loop, written with the
book's own functions or with d2lstyle's, and names each common mistake in its own words."""

import pytest
import torch

from d2lstyle import book, compute_loss, extract_features, gram
from d2lstyle.course import checks


def loop(content_X, style_X, net, settings, *, zero_grad=True, targets_no_grad=True,
         detaching_loss=True, targets_in_loop=False, scheduler="after", step_size=None,
         content_features_from="X", optimise="image", new_optimiser_each_step=False):
    """The exercise's solution, with switches that make it commit one mistake at a time."""
    layers = settings.content_layers, settings.style_layers

    def targets():
        with torch.set_grad_enabled(not targets_no_grad):
            contents_Y, _ = extract_features(content_X, net, *layers)
            _, styles_Y = extract_features(style_X, net, *layers)
            return contents_Y, [gram(Y) for Y in styles_Y]

    def loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram):
        if detaching_loss:
            return compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings)[3]
        # written by hand, without .detach() on the targets
        contents_l = [torch.square(Y_hat - Y).mean() * settings.content_weight
                      for Y_hat, Y in zip(contents_Y_hat, contents_Y)]
        styles_l = [torch.square(gram(Y_hat) - G).mean() * settings.style_weight
                    for Y_hat, G in zip(styles_Y_hat, styles_Y_gram)]
        tv_l = book.tv_loss(X) * settings.tv_weight
        return sum(styles_l + contents_l + [tv_l])

    def make_trainer():
        params = net.parameters() if optimise == "net" else [X]
        trainer = torch.optim.Adam(params, lr=settings.lr)
        return trainer, torch.optim.lr_scheduler.StepLR(trainer, step_size or settings.lr_decay_step,
                                                        settings.lr_decay)

    contents_Y, styles_Y_gram = targets()
    X = content_X.clone().requires_grad_(optimise == "image")
    trainer, lr_scheduler = make_trainer()
    for epoch in range(settings.num_steps):
        if new_optimiser_each_step:
            trainer, lr_scheduler = make_trainer()
        if zero_grad:
            trainer.zero_grad()
        if targets_in_loop:
            contents_Y, styles_Y_gram = targets()
        contents_Y_hat, styles_Y_hat = extract_features(X, net, *layers)
        if content_features_from == "content":
            contents_Y_hat, _ = extract_features(content_X, net, *layers)
        l = loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram)
        l.backward()
        if scheduler == "before":
            lr_scheduler.step()
        trainer.step()
        if scheduler == "after" or (scheduler == "every lr_decay_step" and
                                    (epoch + 1) % settings.lr_decay_step == 0):
            lr_scheduler.step()
    return X.detach()


def test_accepts_the_solution(capsys):
    checks.check_train_loop(loop)
    out = capsys.readouterr().out
    assert out.startswith("OK: loop agrees with the book's loop over 30 steps")


def test_accepts_the_books_own_code(capsys):
    """The chapter's get_contents/get_styles/get_inits/train, word for word but for the globals
    (d2lstyle.course.checks.book_train): targets computed with a graph into the unfrozen network's
    weights, detached by the losses, the image a SynthesizedImage."""
    checks.check_train_loop(checks.book_train)
    assert capsys.readouterr().out.startswith("OK: book_train agrees")


def test_accepts_an_image_made_a_parameter_and_targets_detached_afterwards(capsys):
    def variant(content_X, style_X, net, settings):
        layers = settings.content_layers, settings.style_layers
        contents_Y = [Y.detach() for Y in extract_features(content_X, net, *layers)[0]]
        styles_Y_gram = [gram(Y).detach() for Y in extract_features(style_X, net, *layers)[1]]
        X = torch.nn.Parameter(content_X.clone())
        trainer = torch.optim.Adam([X], lr=settings.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(trainer, settings.lr_decay_step, settings.lr_decay)
        for _ in range(settings.num_steps):
            X.grad = None  # as good as trainer.zero_grad()
            l = compute_loss(X, *extract_features(X, net, *layers), contents_Y, styles_Y_gram, settings)[3]
            l.backward()
            trainer.step()
            scheduler.step()
        return X
    checks.check_train_loop(variant)
    assert capsys.readouterr().out.startswith("OK: variant agrees")


MISTAKES = {
    # (a) no zero_grad
    "no zero_grad": (dict(zero_grad=False), r"gradients accumulate.*call trainer\.zero_grad\(\) at the "
                                            r"start of every step"),
    # (b) targets not detached
    "targets with a graph, loss without detach": (
        dict(targets_no_grad=False, detaching_loss=False),
        r"failed at step 1 with 'Trying to backward through the graph a second time': the targets still "
        r"carry the graph.*torch\.no_grad\(\)"),
    "targets recomputed with a graph in the loop": (
        dict(targets_no_grad=False, detaching_loss=False, targets_in_loop=True),
        r"the gradient flows into the features of the content image content_X \(the targets\)"),
    # (c) the scheduler in the wrong place
    "scheduler before the optimiser": (dict(scheduler="before"),
                                       r"drops one step early \(to 0\.025 at step 9, expected at step 10\): "
                                       r"scheduler\.step\(\) is called before trainer\.step\(\)"),
    "scheduler never stepped": (dict(scheduler="never"), r"stays at 0\.05 for all 30 steps.*never stepped"),
    "scheduler with step_size 1": (dict(step_size=1), r"multiplied by 0\.5 at every step, expected once "
                                                      r"every 10 steps"),
    "scheduler stepped once per 10 steps": (dict(scheduler="every lr_decay_step"),
                                            r"stays at 0\.05 for all 30 steps.*never stepped, or too rarely "
                                            r"\(StepLR counts its own calls\)"),
    # (d) content features from the wrong image
    "content features from the content image": (
        dict(content_features_from="content"),
        r"at step 1 the content term sends no gradient to the image: the content features Y_hat are "
        r"computed from the content image, not from the synthesised image X \(in the loop, the content "
        r"image content_X goes through the network\)"),
    # (e) the optimiser over the network's weights
    "optimiser over the weights": (dict(optimise="net"), r"the optimiser updates the network's weights "
                                                         r"\(net\.parameters\(\)\) instead of the image"),
    # and one more that is easy to make
    "a new optimiser every step": (dict(new_optimiser_each_step=True), r"a new optimiser is created "
                                                                      r"during the loop \(30 optimisers\)"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_names_the_mistake(mistake):
    switches, message = MISTAKES[mistake]

    def mistaken(content_X, style_X, net, settings):
        return loop(content_X, style_X, net, settings, **switches)

    with pytest.raises(AssertionError, match=r"^mistaken: .*" + message):
        checks.check_train_loop(mistaken)


def test_returns_the_image_not_the_content():
    def lazy(content_X, style_X, net, settings):
        loop(content_X, style_X, net, settings)
        return content_X

    with pytest.raises(AssertionError, match=r"^lazy returned the content image"):
        checks.check_train_loop(lazy)


def test_not_written_yet():
    def my_train(content_X, style_X, net, settings):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match=r"^my_train is not written yet"):
        checks.check_train_loop(my_train)


def test_hooks_are_removed_afterwards():
    """The check leaves no hook behind: a later optimiser step records nothing."""
    from torch.optim.optimizer import _global_optimizer_pre_hooks

    before = len(_global_optimizer_pre_hooks)
    with pytest.raises(AssertionError):
        checks.check_train_loop(lambda *args: loop(*args, zero_grad=False))
    assert len(_global_optimizer_pre_hooks) == before


def test_leaves_the_global_rng_and_the_threads_alone():
    """The book's SynthesizedImage draws from torch.rand; the check runs with one thread."""
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_train_loop(checks.book_train)
    torch.testing.assert_close(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
