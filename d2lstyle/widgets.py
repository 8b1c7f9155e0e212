"""The explorer: every knob of :func:`d2lstyle.transfer` as a widget, with a live preview (notebook 06).

:func:`explorer` returns an :class:`Explorer` to show in a notebook cell: content and style (the demo
pair, the figures' pairs, uploaded files, or a path or URL typed in a box), log-scale sliders for
the content, style and TV weights, the content and style layers, the preset, the size and the
number of steps, Run and Stop buttons, and a preview image and loss curves that update while the
transfer runs.

The transfer runs in a background thread so that the kernel stays free to take the Stop click; the
thread updates the widgets itself, which Jupyter's comms allow (JupyterLab, Colab). Pictures reach
the browser as PNG bytes in ``ipywidgets.Image`` widgets, never through an ``Output`` widget, which
cannot capture output from another thread.

Works with ipywidgets 7.7 (Colab) and 8 (JupyterLab 4); the one difference that matters here is the
format of ``FileUpload.value`` (:func:`uploaded_files` reads both). On Colab, ipywidgets 7 loses
uploads over about 1 MB (ipywidgets#3452: the upload arrives empty, or not at all), so the explorer
says so and also takes a path or an http(s) URL. Without ipywidgets,
:func:`explorer` prints one line saying how to install it. Everything but drawing the widgets is
plain Python, tested without a browser (tests/test_widgets.py); tests/test_browser.py drives the
real thing in JupyterLab and Chromium.
"""

from __future__ import annotations

import html
import io
import os
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from .errors import ImageLoadError
from .images import demo_images, load_image, open_image, package_image, postprocess
from .patterns import mosaic, swirls
from .presets import PRESETS, get_preset
from .style_transfer import transfer
from .vgg import LAYER_NAMES, vgg19

NEEDS_WIDGETS = "the explorer needs ipywidgets: pip install ipywidgets, then restart the kernel"
# Shown by front ends that cannot draw widgets (GitHub, a plain-text console, a missing extension).
NO_WIDGET_VIEW = ("d2lstyle explorer: its widgets did not load here. Open the notebook in JupyterLab "
                  "(with ipywidgets installed) or on Colab and run the cell again.")

PAIRS = ("demo pair (the book's; offline: chelsea + swirls)", "astronaut + swirls",
         "chelsea + mosaic", "rocket + Hubble")
# A second style to blend with the pair's (d2lstyle.transfer's style_blend); "the box" is an image
# loaded with the "use as 2nd style" button.
SECOND_STYLES = ("none", "swirls", "mosaic", "Hubble deep field", "the box")
# The colour choices: transfer's preserve_colors values, labelled.
COLOURS = (("the style's", False), ("the photo's (luminance)", "luminance"),
           ("the photo's (histogram)", "histogram"))
# Log10 of each weight slider's range: wide enough for both presets (the 'gatys' style weight of
# 1e7 is for relative style terms) and for the rebalanced weights that notebook 05 measures for
# the original network (style 0.1, TV 1e4).
WEIGHT_EXPONENTS = {"content_weight": (-3, 3), "style_weight": (-3, 8), "tv_weight": (-1, 7)}
THUMBNAIL = 160   # longest side of the content/style thumbnails, in pixels
# The largest upload the explorer decodes. A phone's photograph is 2-6 MB; style transfer works at
# 512 px or less, and a bigger file only travels slowly through the widget channel.
MAX_UPLOAD_BYTES = 20 * 2**20
# What to do when Colab's ipywidgets 7 loses an upload (ipywidgets#3452), in one line.
EMPTY_UPLOAD = ("the upload arrived empty: Colab's ipywidgets 7 loses uploads over about 1 MB; "
                "type a URL or a path in the explorer's box instead, use a smaller file, or run "
                "`from google.colab import files; files.upload()` in a cell and type the file's name")


def load_pair(name: str) -> tuple[Image.Image, Image.Image]:
    """``(content, style)`` for one of :data:`PAIRS`: the demo pair (:func:`d2lstyle.demo_images`,
    which falls back offline) or one of the gallery's pairs (``scripts/make_figures.py``)."""
    if name == PAIRS[0]:
        return demo_images(verbose=False)
    if name == PAIRS[1]:
        return load_image(package_image("astronaut.png")), swirls()
    if name == PAIRS[2]:
        return load_image(package_image("chelsea.png")), mosaic()
    if name == PAIRS[3]:
        return load_image(package_image("rocket.jpg")), load_image(package_image("hubble_deep_field.jpg"))
    raise ValueError(f"unknown pair {name!r}: choose one of {', '.join(PAIRS)}")


def load_second_style(name: str) -> Image.Image:
    """One of :data:`SECOND_STYLES`' built-in images (not ``"none"`` or ``"the box"``)."""
    if name == "swirls":
        return swirls()
    if name == "mosaic":
        return mosaic()
    if name == "Hubble deep field":
        return load_image(package_image("hubble_deep_field.jpg"))
    raise ValueError(f"no built-in second style {name!r}: choose one of {', '.join(SECOND_STYLES[1:4])}")


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``[(file name, content)]`` from a ``FileUpload.value`` of either ipywidgets version.

    ipywidgets 8: a tuple of dicts with ``name`` and ``content`` (a memoryview).
    ipywidgets 7: a dict ``{name: {"metadata": {"name": ..., ...}, "content": bytes}}``.
    """
    if not value:
        return []
    if isinstance(value, dict):  # ipywidgets 7
        return [(entry.get("metadata", {}).get("name", name), bytes(entry["content"]))
                for name, entry in value.items()]
    return [(entry["name"], bytes(entry["content"])) for entry in value]  # ipywidgets 8


def uploaded_image(value) -> Image.Image | None:
    """The last image in a ``FileUpload.value`` as an RGB PIL image, or None when it is empty.

    Goes through the same checks as :func:`d2lstyle.load_image` (non-images, truncated files and
    decompression bombs raise :class:`d2lstyle.ImageLoadError` naming the uploaded file), and also
    refuses, in one line naming the file, a file whose content arrived empty (:data:`EMPTY_UPLOAD`)
    and one larger than :data:`MAX_UPLOAD_BYTES`.
    """
    files = uploaded_files(value)
    if not files:
        return None
    name, content = files[-1]
    if not content:
        raise ImageLoadError(f"{name}: {EMPTY_UPLOAD}")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ImageLoadError(f"{name}: {len(content) / 2**20:.1f} MB, more than the explorer's upload "
                             f"limit of {MAX_UPLOAD_BYTES / 2**20:.0f} MB; use a smaller file, or type "
                             f"its path or URL in the explorer's box")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(content)
        return open_image(path, name)


def to_png(img: Image.Image, longest_side: int | None = None) -> bytes:
    """PNG bytes of ``img``, shrunk (aspect kept) so its longest side is at most ``longest_side``."""
    if longest_side is not None and max(img.size) > longest_side:
        img = img.copy()
        img.thumbnail((longest_side, longest_side), Image.LANCZOS)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def plot_losses(history: list[dict], ax) -> None:
    """The weighted content, style and TV terms and their total against the step, log scale."""
    steps = [record["step"] for record in history]
    for key in ("content", "style", "tv", "total"):
        values = [record[key] for record in history]
        if any(v > 0 for v in values):  # a zero weight gives a term a log axis cannot show
            ax.plot(steps, values, label=key, lw=2 if key == "total" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    if ax.lines:
        ax.legend(fontsize=8, loc="upper right")


def loss_png(history: list[dict], width: float = 4.0, height: float = 2.6) -> bytes:
    """:func:`plot_losses` as PNG bytes, drawn without pyplot (safe in a background thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if history:
        plot_losses(history, ax)
    else:
        ax.text(0.5, 0.5, "loss curves appear here", ha="center", va="center", color="grey")
        ax.set_axis_off()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def explorer(**kwargs):
    """An :class:`Explorer` (display it as a cell's last line), or, without ipywidgets, None after
    printing one line saying how to install it. Keywords go to :class:`Explorer`."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        print(NEEDS_WIDGETS)
        return None
    return Explorer(**kwargs)


class Explorer:
    """Widgets for :func:`d2lstyle.transfer`, a Run/Stop pair, and a live preview.

    ``net``: the network to use (default: ``vgg19(weights)``, built at the first run and kept).
    ``preset``, ``size`` (longest side in pixels) and ``num_steps`` (default: the preset's) set the
    widgets' starting values; ``pair`` is one of :data:`PAIRS`; ``refresh`` is the least time in
    seconds between two preview updates. After a run, ``result`` is its :class:`d2lstyle.Result`.
    ``run()`` and ``stop()`` do what the buttons do, ``load(side, location)`` what the path/URL box
    and its buttons do; ``widget`` is the whole box, and ``display(explorer)`` shows it.
    """

    def __init__(self, net=None, weights="original", preset: str = "gatys", size: int = 192,
                 num_steps: int | None = None, pair: str = PAIRS[1], refresh: float = 0.5,
                 device=None, seed: int = 0):
        try:
            import ipywidgets as w
        except ImportError as error:
            raise ImportError(NEEDS_WIDGETS) from error

        self.net, self.weights, self.device, self.seed, self.refresh = net, weights, device, seed, refresh
        self.result = None
        self.history: list[dict] = []
        self._lock = threading.Lock()   # held while a transfer runs: a second Run is refused
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pair_cache: dict[str, tuple[Image.Image, Image.Image]] = {}
        self._second_cache: dict[str, Image.Image] = {}  # the built-in second styles, by name
        # The user's own images (uploaded, or from a path or URL), each replacing one of the pair's.
        self._own: dict[str, Image.Image | None] = {"content": None, "style": None, "second": None}

        wide = {"description_width": "110px"}
        layout = w.Layout(width="360px")
        self.pair = w.Dropdown(options=PAIRS, value=pair, description="images", style=wide,
                               layout=layout)
        self.content_file = w.FileUpload(accept="image/*", multiple=False, description="content file")
        self.style_file = w.FileUpload(accept="image/*", multiple=False, description="style file")
        self.location = w.Text(placeholder="a path, or an http(s) URL", description="path or URL",
                               style=wide, layout=layout)
        self.use_as_content = w.Button(description="use as content")
        self.use_as_style = w.Button(description="use as style")
        self.use_as_second = w.Button(description="use as 2nd style")
        self.preset = w.Dropdown(options=list(PRESETS), value=get_preset(preset).name,
                                 description="preset", style=wide, layout=layout)
        self.sliders = {
            key: w.FloatLogSlider(value=1.0, base=10, min=low, max=high, step=0.1,
                                  description=key.replace("_", " "), readout_format=".3g",
                                  style=wide, layout=layout, continuous_update=False)
            for key, (low, high) in WEIGHT_EXPONENTS.items()}
        self.content_layer = w.Dropdown(options=LAYER_NAMES, value="relu4_2", description="content layer",
                                        style=wide, layout=layout)
        self.style_layers = w.SelectMultiple(options=LAYER_NAMES, value=(), rows=7,
                                             description="style layers", style=wide, layout=layout)
        self.size = w.IntSlider(value=size, min=32, max=512, step=16, description="size (px)",
                                style=wide, layout=layout, continuous_update=False)
        self.num_steps = w.IntSlider(value=1, min=1, max=1000, description="steps", style=wide,
                                     layout=layout, continuous_update=False)
        self.second_style = w.Dropdown(options=SECOND_STYLES, value="none", description="2nd style",
                                       style=wide, layout=layout)
        self.blend = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, disabled=True,
                                   description="1st style's share", readout_format=".2f",
                                   style=wide, layout=layout, continuous_update=False)
        self.style_scale = w.FloatLogSlider(value=1.0, base=2, min=-2, max=2, step=0.25,
                                            description="style scale", readout_format=".3g",
                                            style=wide, layout=layout, continuous_update=False)
        self.colours = w.Dropdown(options=COLOURS, value=False, description="colours", style=wide,
                                  layout=layout)
        self.fast = w.Checkbox(value=False, description="fast (image pyramid, line search)",
                               style=wide, layout=layout)
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True)
        self.status = w.HTML(value="Choose the settings and press Run.")
        self.content_view = w.Image(format="png", width="128")
        self.style_view = w.Image(format="png", width="128")
        self.preview = w.Image(format="png", width="320")
        self.losses = w.Image(value=loss_png([]), format="png", width="320")

        # CSS classes name the parts for tests/test_browser.py (and for anyone styling them).
        for name, part in (("preview", self.preview), ("losses", self.losses), ("status", self.status),
                           ("run", self.run_button), ("stop", self.stop_button),
                           ("size", self.size), ("steps", self.num_steps),
                           ("second-style", self.second_style), ("blend", self.blend),
                           ("style-scale", self.style_scale), ("colours", self.colours),
                           ("fast", self.fast),
                           *((key.replace("_", "-"), slider) for key, slider in self.sliders.items())):
            part.add_class(f"d2lstyle-{name}")

        self.apply_preset(self.preset.value)
        if num_steps is not None:
            self.num_steps.value = num_steps
        self.preset.observe(lambda change: self.apply_preset(change["new"]), names="value")
        self.pair.observe(lambda change: self._pair_changed(), names="value")
        self._watch_upload(self.content_file, "content")
        self._watch_upload(self.style_file, "style")
        self.use_as_content.on_click(lambda button: self.load("content"))
        self.use_as_style.on_click(lambda button: self.load("style"))
        self.use_as_second.on_click(lambda button: self.load("second"))
        self.second_style.observe(lambda change: self._second_changed(), names="value")
        self.run_button.on_click(lambda button: self.run())
        self.stop_button.on_click(lambda button: self.stop())
        self._show_inputs()

        controls = w.VBox([self.pair, w.HBox([self.content_file, self.style_file]), self.location,
                           w.HBox([self.use_as_content, self.use_as_style, self.use_as_second]),
                           self.preset, *self.sliders.values(), self.content_layer,
                           self.style_layers, self.size, self.num_steps, self.second_style,
                           self.blend, self.style_scale, self.colours, self.fast,
                           w.HBox([self.run_button, self.stop_button])])
        views = w.VBox([w.HBox([self.content_view, self.style_view]), self.preview, self.losses])
        self.widget = w.VBox([w.HBox([controls, views]), self.status])

    # -- settings -------------------------------------------------------------------------------

    def apply_preset(self, name: str) -> None:
        """Set the weights, layers and number of steps to preset ``name``'s (the size is kept)."""
        preset = get_preset(name)
        for key, slider in self.sliders.items():
            slider.value = getattr(preset, key)
        self.content_layer.value = preset.content_layers[0]
        self.style_layers.value = tuple(preset.style_layers)
        self.num_steps.value = preset.num_steps
        self.style_scale.value = preset.style_scale

    def settings(self) -> dict:
        """The keyword arguments the widgets give :func:`d2lstyle.transfer` (images aside)."""
        blend = None
        if self.second_style.value != "none":
            blend = [self.blend.value, 1.0 - self.blend.value]
        return dict(preset=self.preset.value, size=self.size.value, num_steps=self.num_steps.value,
                    content_layers=[self.content_layer.value],
                    style_layers=list(self.style_layers.value),
                    **{key: slider.value for key, slider in self.sliders.items()},
                    style_blend=blend, style_scale=self.style_scale.value,
                    preserve_colors=self.colours.value, fast=self.fast.value)

    def images(self) -> tuple[Image.Image, Image.Image]:
        """``(content, style)``: the chosen pair, with either side replaced by an uploaded file."""
        name = self.pair.value
        if name not in self._pair_cache:
            self._pair_cache[name] = load_pair(name)
        content, style = self._pair_cache[name]
        return self._own["content"] or content, self._own["style"] or style

    def styles(self) -> list[Image.Image]:
        """The style images of the next run: the pair's (or the user's), then the second style's
        if one is chosen (``"the box"``: the image loaded with "use as 2nd style")."""
        choice = self.second_style.value
        first = [self.images()[1]]
        if choice == "none":
            return first
        if choice == "the box":
            if self._own["second"] is None:
                raise ImageLoadError("2nd style: load an image with the box and "
                                     "\"use as 2nd style\" first")
            return first + [self._own["second"]]
        if choice not in self._second_cache:
            self._second_cache[choice] = load_second_style(choice)
        return first + [self._second_cache[choice]]

    def _second_changed(self) -> None:
        self.blend.disabled = self.second_style.value == "none"

    def load(self, side: str, location: str | None = None) -> bool:
        """Use the image at ``location`` (default: the box's text), a path or an http(s) URL read
        by :func:`d2lstyle.load_image`, as the ``"content"``, the ``"style"`` or the ``"second"``
        style (which also chooses "the box" as the 2nd style). Returns whether
        it did; if not, the status line says why in one line."""
        location = (self.location.value if location is None else location).strip()
        side_name = "2nd style" if side == "second" else side
        if not location:
            self._say(f"{side_name}: type a path or an http(s) URL in the box first", error=True)
            return False
        try:
            img = load_image(os.path.expanduser(location))
        except ImageLoadError as error:
            self._say(f"{side_name}: {error}", error=True)
            return False
        self._own[side] = img
        if side == "second":
            self.second_style.value = "the box"
        self._show_inputs()
        self._say(f"{side_name}: {location} ({img.size[0]}x{img.size[1]} pixels)")
        return True

    def _pair_changed(self) -> None:
        self._own.update(content=None, style=None)  # a chosen pair replaces the user's images
        self._show_inputs()

    def _watch_upload(self, upload, side: str) -> None:
        if upload.has_trait("_counter"):
            # ipywidgets 7 rebuilds `value` from the browser's data when `_counter` goes up; an
            # upload Colab lost leaves `value` empty, which fires no change of `value` itself.
            upload.observe(lambda change: self._upload(side, upload.value), names="_counter")
        else:
            upload.observe(lambda change: self._upload(side, change["new"]), names="value")

    def _upload(self, side: str, value) -> None:
        try:
            img = uploaded_image(value)
            if img is None:  # an upload happened, and nothing came with it
                raise ImageLoadError(EMPTY_UPLOAD)
        except ImageLoadError as error:
            self._say(f"{side} file: {error}", error=True)
            return
        self._own[side] = img
        self._show_inputs()
        self._say(f"{side} file: {uploaded_files(value)[-1][0]} ({img.size[0]}x{img.size[1]} pixels)")

    def _show_inputs(self) -> None:
        try:
            content, style = self.images()
        except (ImageLoadError, OSError) as error:
            self._say(str(error), error=True)
            return
        self.content_view.value = to_png(content, THUMBNAIL)
        self.style_view.value = to_png(style, THUMBNAIL)
        if not self.running:  # until the next run, the preview shows its starting image
            self.preview.value = to_png(content, self.size.value)

    # -- running --------------------------------------------------------------------------------

    def run(self, wait: bool = False) -> bool:
        """Start a transfer with the widgets' settings in a background thread (the Run button).

        Returns False, and starts nothing, while another run is going. ``wait=True`` returns only
        when the run has ended (for scripts and for the notebook's static picture).
        """
        if not self._lock.acquire(blocking=False):
            self._say("already running: press Stop first")
            return False
        self._stop.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._thread = threading.Thread(target=self._work, name="d2lstyle-explorer", daemon=True)
        self._thread.start()
        if wait:
            self.wait()
        return True

    def stop(self) -> None:
        """Ask the running transfer to stop after its current step (the Stop button)."""
        self._stop.set()
        if self._lock.locked():
            self._say("stopping after this step ...")

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current run, if any, has ended."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def _work(self) -> None:
        """The background thread: build the network once, run the transfer, update the views."""
        try:
            settings = self.settings()
            content, style = self.images()[0], self.styles()
            if self.net is None:
                self._say("building the network (once) ...")
                self.net = vgg19(self.weights)
            history: list[dict] = []
            self.history = history
            last_update = [0.0]

            def callback(step, X, record):
                history.append(record)
                now = time.perf_counter()
                if now - last_update[0] >= self.refresh:
                    last_update[0] = now
                    self.preview.value = to_png(postprocess(X))
                    self.losses.value = loss_png(history)
                    self._say(f"step {step + 1} of {settings['num_steps']}: total loss "
                              f"{record['total']:.3g} ({record['time']:.0f} s)")
                return self._stop.is_set()

            self._say("starting ...")
            result = transfer(content, style, net=self.net, device=self.device, seed=self.seed,
                              callback=callback, progress=False, **settings)
            self.result, self.history = result, result.history
            self.preview.value = to_png(result.image)
            self.losses.value = loss_png(result.history)
            took = result.history[-1]["time"] if result.history else 0.0
            ending = result.stopped or "done"
            self._say(f"{ending}: {len(result.history)} steps in {took:.1f} s, total loss "
                      f"{result.history[0]['total']:.3g} → {result.history[-1]['total']:.3g}")
        except Exception as error:  # shown in the status line: a thread's traceback reaches no one
            self._say(f"{type(error).__name__}: {error}", error=True)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
            self._lock.release()

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00" if error else "inherit"
        self.status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    # -- display --------------------------------------------------------------------------------

    def _repr_mimebundle_(self, include=None, exclude=None):
        """What ``display(explorer)`` (or a cell ending in ``explorer``) shows: the root box's own
        widget view, with a plain-text line for front ends that cannot draw widgets.

        ipywidgets 8 widgets make that bundle in ``_repr_mimebundle_``, which this delegates to;
        ipywidgets 7 widgets have none (``_ipython_display_`` publishes it), so it is written out
        here as ipywidgets 7 writes it (view format 2.0, the model's id).
        """
        own = getattr(self.widget, "_repr_mimebundle_", None)
        if own is not None:  # ipywidgets 8
            bundle = dict(own(include=include, exclude=exclude) or {})
        else:
            bundle = {"application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}}
        bundle["text/plain"] = NO_WIDGET_VIEW
        return bundle
