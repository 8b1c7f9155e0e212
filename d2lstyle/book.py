"""The chapter's own code (D2L section 14.12, PyTorch tab), re-stated once, with the book's names.

This is the reference the rest of the project is compared with: the tests, the benchmark's
baseline, the exercise checks and the notebooks import it from here. It shares no code with the
package's implementation (:mod:`d2lstyle.images`, :mod:`d2lstyle.features`, :mod:`d2lstyle.losses`,
:mod:`d2lstyle.loop`), so that agreement between the two means something.

Where it departs from the book, and why:

- The book reads the globals ``net``, ``content_layers`` and ``style_layers``; here ``net`` is an
  argument, and :func:`book_net` builds it from any VGG19 ``features`` network the way the book
  does (``features[:29]``, torchvision's in-place ReLUs).
- The book's network is not frozen, so every step also computes weight gradients it never uses;
  :func:`book_net` shares the caller's (frozen) weights, which changes no value.
- Everything runs in the network's dtype (float32 as the book), so that the tests can run the
  whole loop in float64: ``get_contents``/``get_styles`` cast the images to it and
  ``SynthesizedImage`` takes a ``dtype``. :func:`train` returns the losses instead of drawing an
  ``Animator``.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

rgb_mean = torch.tensor([0.485, 0.456, 0.406])
rgb_std = torch.tensor([0.229, 0.224, 0.225])

style_layers, content_layers = [0, 5, 10, 19, 28], [25]
content_weight, style_weight, tv_weight = 1, 1e4, 10


def preprocess(img, image_shape):
    """PIL image -> (1, 3, h, w) float32, resized to ``image_shape`` (h, w), ImageNet-normalised."""
    transforms = torchvision.transforms.Compose([
        torchvision.transforms.Resize(image_shape),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(mean=rgb_mean, std=rgb_std)])
    return transforms(img).unsqueeze(0)


def postprocess(img):
    """(1, 3, h, w) in the normalised space -> PIL image (the book truncates to 0..255)."""
    img = img[0].to(rgb_std.device)
    img = torch.clamp(img.permute(1, 2, 0) * rgb_std + rgb_mean, 0, 1)
    return torchvision.transforms.ToPILImage()(img.permute(2, 0, 1))


def book_net(pretrained_features: nn.Sequential) -> nn.Sequential:
    """The book's ``net``: the first 29 modules of a VGG19 ``features`` network (weights shared),
    its ReLUs in place as torchvision's, so that a kept "conv" output is overwritten by its ReLU
    unless it is the last module run (see :func:`d2lstyle.vgg.book_layers`)."""
    modules = [nn.ReLU(inplace=True) if isinstance(m, nn.ReLU) else m for m in pretrained_features]
    return nn.Sequential(*modules[: max(content_layers + style_layers) + 1])


def extract_features(X, content_layers, style_layers, net):
    """Run ``X`` through every module of ``net`` in turn; keep the outputs at the given indices."""
    contents = []
    styles = []
    for i in range(len(net)):
        X = net[i](X)
        if i in style_layers:
            styles.append(X)
        if i in content_layers:
            contents.append(X)
    return contents, styles


def get_contents(content_img, image_shape, device, net):
    content_X = preprocess(content_img, image_shape).to(device, next(net.parameters()).dtype)
    contents_Y, _ = extract_features(content_X, content_layers, style_layers, net)
    return content_X, contents_Y


def get_styles(style_img, image_shape, device, net):
    style_X = preprocess(style_img, image_shape).to(device, next(net.parameters()).dtype)
    _, styles_Y = extract_features(style_X, content_layers, style_layers, net)
    return style_X, styles_Y


def content_loss(Y_hat, Y):
    # We detach the target content from the tree used to dynamically compute
    # the gradient: this is a stated value, not a variable.
    return torch.square(Y_hat - Y.detach()).mean()


def gram(X):
    num_channels, n = X.shape[1], X.numel() // X.shape[1]
    X = X.reshape((num_channels, n))  # (c, hw): right for a batch of one image only
    return torch.matmul(X, X.T) / (num_channels * n)


def style_loss(Y_hat, gram_Y):
    return torch.square(gram(Y_hat) - gram_Y.detach()).mean()


def tv_loss(Y_hat):
    return 0.5 * (torch.abs(Y_hat[:, :, 1:, :] - Y_hat[:, :, :-1, :]).mean() +
                  torch.abs(Y_hat[:, :, :, 1:] - Y_hat[:, :, :, :-1]).mean())


def compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram):
    # Calculate the content, style, and total variance losses respectively
    contents_l = [content_loss(Y_hat, Y) * content_weight for Y_hat, Y in zip(
        contents_Y_hat, contents_Y)]
    styles_l = [style_loss(Y_hat, Y) * style_weight for Y_hat, Y in zip(
        styles_Y_hat, styles_Y_gram)]
    tv_l = tv_loss(X) * tv_weight
    # Add up all the losses
    l = sum(styles_l + contents_l + [tv_l])
    return contents_l, styles_l, tv_l, l


class SynthesizedImage(nn.Module):
    def __init__(self, img_shape, dtype=torch.float32, **kwargs):
        super(SynthesizedImage, self).__init__(**kwargs)
        self.weight = nn.Parameter(torch.rand(*img_shape, dtype=dtype))

    def forward(self):
        return self.weight


def get_inits(X, device, lr, styles_Y):
    gen_img = SynthesizedImage(X.shape, X.dtype).to(device)
    gen_img.weight.data.copy_(X.data)
    trainer = torch.optim.Adam(gen_img.parameters(), lr=lr)
    styles_Y_gram = [gram(Y) for Y in styles_Y]
    return gen_img(), styles_Y_gram, trainer


def train(X, contents_Y, styles_Y, device, lr, num_epochs, lr_decay_epoch, net):
    """The book's loop; returns the image (1, 3, h, w) and each epoch's total loss ``l``, as a
    float, evaluated before that epoch's update."""
    X, styles_Y_gram, trainer = get_inits(X, device, lr, styles_Y)
    scheduler = torch.optim.lr_scheduler.StepLR(trainer, lr_decay_epoch, 0.8)
    losses = []
    for epoch in range(num_epochs):
        trainer.zero_grad()
        contents_Y_hat, styles_Y_hat = extract_features(X, content_layers, style_layers, net)
        contents_l, styles_l, tv_l, l = compute_loss(
            X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram)
        l.backward()
        trainer.step()
        scheduler.step()
        losses.append(float(l.detach()))
    return X, losses


def book_loop(pretrained_features, content_img, style_img, image_shape=(300, 450),
              num_epochs=500, device=torch.device("cpu"), lr=0.3, lr_decay_epoch=50):
    """The chapter's last cell: both images at ``image_shape``, the content as the start, then
    :func:`train`. Runs in the dtype of ``pretrained_features`` (float32 as the book; float64 for
    exact comparisons). Returns the final image (1, 3, h, w), detached, and the losses."""
    net = book_net(pretrained_features).to(device)
    content_X, contents_Y = get_contents(content_img, image_shape, device, net)
    _, styles_Y = get_styles(style_img, image_shape, device, net)
    X, losses = train(content_X, contents_Y, styles_Y, device, lr, num_epochs, lr_decay_epoch, net)
    return X.detach(), losses


def book_loss(pretrained_features, content_img, style_img, X):
    """The book's total loss ``l`` at the image ``X`` (1, 3, h, w), both images resized to X's
    shape, in X's dtype; differentiable in ``X``."""
    net = book_net(pretrained_features)
    shape = list(X.shape[-2:])
    with torch.no_grad():  # the targets, which the book computes once
        contents_Y, _ = extract_features(preprocess(content_img, shape).to(X), content_layers,
                                         style_layers, net)
        _, styles_Y = extract_features(preprocess(style_img, shape).to(X), content_layers,
                                       style_layers, net)
    contents_Y_hat, styles_Y_hat = extract_features(X, content_layers, style_layers, net)
    return compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y,
                        [gram(Y) for Y in styles_Y])[3]
