"""d2lstyle.widgets without a browser: upload formats of ipywidgets 7 and 8, presets, Run/Stop, errors.

tests/test_browser.py drives the same explorer in JupyterLab and Chromium.
"""

import datetime
import functools
import http.server
import io
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from d2lstyle import ImageLoadError, PRESETS, widgets


def png_bytes(size=(40, 30), colour=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_v7(name, content):
    """FileUpload.value as ipywidgets 7.7 builds it (widget_upload.py: on_incr_counter)."""
    metadata = {"name": name, "type": "image/png", "size": len(content), "lastModified": 0}
    return {name: {"metadata": metadata, "content": content}}


def upload_v8(name, content):
    """FileUpload.value as ipywidgets 8 builds it: a tuple of dicts, content a memoryview."""
    return ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)


def ipywidgets_7():
    import ipywidgets

    return ipywidgets.__version__.startswith("7.")


def send_upload(upload, name, content):
    """Set a FileUpload widget's value the way the browser's side of each ipywidgets version does."""
    if ipywidgets_7():  # value is read-only, computed when _counter changes
        metadata = {"name": name, "type": "image/png", "size": len(content), "lastModified": 0}
        upload.set_trait("metadata", [metadata])
        upload.set_trait("data", [content])
        upload.set_trait("_counter", upload._counter + 1)
    else:
        upload.value = upload_v8(name, content)


# -- plain functions ----------------------------------------------------------------------------

@pytest.mark.parametrize("upload", [upload_v7, upload_v8])
def test_uploaded_files_reads_both_ipywidgets_formats(upload):
    content = png_bytes()
    assert widgets.uploaded_files(upload("red.png", content)) == [("red.png", content)]
    img = widgets.uploaded_image(upload("red.png", content))
    assert img.mode == "RGB" and img.size == (40, 30) and img.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("upload", [upload_v7, upload_v8])
def test_an_upload_that_arrived_empty_says_why_and_what_to_do(upload):
    with pytest.raises(ImageLoadError, match=r"^big\.jpg: the upload arrived empty: Colab's ipywidgets 7 "
                       r"loses uploads over about 1 MB; type a URL or a path .*, use a smaller file, "
                       r"or run `from google\.colab import files; files\.upload\(\)` in a cell"):
        widgets.uploaded_image(upload("big.jpg", b""))
    assert "\n" not in widgets.EMPTY_UPLOAD


@pytest.mark.parametrize("upload", [upload_v7, upload_v8])
def test_an_upload_over_the_limit_is_refused_before_decoding(upload):
    assert widgets.MAX_UPLOAD_BYTES == 20 * 2**20
    content = png_bytes() + b"\0" * widgets.MAX_UPLOAD_BYTES  # a valid PNG, with trailing bytes
    with pytest.raises(ImageLoadError, match=r"^huge\.png: 20\.0 MB, more than the explorer's upload "
                       r"limit of 20 MB; use a smaller file, or type its path or URL"):
        widgets.uploaded_image(upload("huge.png", content))
    exactly = png_bytes() + b"\0" * (widgets.MAX_UPLOAD_BYTES - len(png_bytes()))
    assert widgets.uploaded_image(upload("big.png", exactly)).size == (40, 30)  # at the limit: read


@pytest.mark.parametrize("empty", [{}, (), None])
def test_nothing_uploaded_gives_none(empty):
    assert widgets.uploaded_files(empty) == []
    assert widgets.uploaded_image(empty) is None


@pytest.mark.parametrize("upload", [upload_v7, upload_v8])
def test_an_uploaded_non_image_is_refused_by_its_name(upload):
    with pytest.raises(ImageLoadError, match=r"^notes\.txt: not an image file"):
        widgets.uploaded_image(upload("notes.txt", b"just some text\n"))


def test_to_png_shrinks_to_the_longest_side_keeping_the_aspect():
    img = Image.new("RGB", (400, 200), (0, 128, 255))
    data = widgets.to_png(img, longest_side=100)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = Image.open(io.BytesIO(data))
    assert back.size == (100, 50) and back.convert("RGB").getpixel((50, 25)) == (0, 128, 255)
    assert Image.open(io.BytesIO(widgets.to_png(img))).size == (400, 200)  # no limit: unchanged
    assert img.size == (400, 200)  # the argument is not modified


def test_loss_curves_skip_a_term_that_is_zero():
    from matplotlib.figure import Figure

    history = [{"step": s, "content": 1.0 / (s + 1), "style": 10.0 / (s + 1), "tv": 0.0,
                "total": 11.0 / (s + 1)} for s in range(5)]
    ax = Figure().add_subplot()
    widgets.plot_losses(history, ax)
    assert [line.get_label() for line in ax.lines] == ["content", "style", "total"]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2, 3, 4] and ax.get_yscale() == "log"
    for data in (widgets.loss_png(history), widgets.loss_png([])):
        assert Image.open(io.BytesIO(data)).size == (320, 208)  # 4 x 2.6 inches at 80 dpi


@pytest.mark.parametrize("name", widgets.PAIRS[1:])
def test_the_figures_pairs_load_offline(name):
    content, style = widgets.load_pair(name)
    assert content.mode == style.mode == "RGB" and min(content.size + style.size) >= 256


def test_an_unknown_pair_is_refused():
    with pytest.raises(ValueError, match="unknown pair 'mona lisa'"):
        widgets.load_pair("mona lisa")


def test_without_ipywidgets_one_clear_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    assert widgets.explorer() is None
    assert capsys.readouterr().out == widgets.NEEDS_WIDGETS + "\n"
    assert "pip install ipywidgets" in widgets.NEEDS_WIDGETS
    with pytest.raises(ImportError, match="the explorer needs ipywidgets: pip install ipywidgets"):
        widgets.Explorer()


# -- the explorer (needs ipywidgets, not a browser) -----------------------------------------------

@pytest.fixture
def explorer(net):
    pytest.importorskip("ipywidgets")
    return widgets.Explorer(net=net, size=48, num_steps=3, refresh=0.0)


def test_the_preset_fills_the_knobs_and_keeps_the_size(explorer):
    assert explorer.settings() == dict(
        preset="gatys", size=48, num_steps=3, content_layers=["relu4_2"],
        style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        content_weight=1.0, style_weight=1e7, tv_weight=1e6, style_blend=None, style_scale=1.0,
        preserve_colors=False, fast=False)
    explorer.preset.value = "d2l"
    d2l = PRESETS["d2l"]
    settings = explorer.settings()
    assert settings["content_layers"] == ["relu4_4"] and settings["style_layers"] == list(d2l.style_layers)
    assert (settings["content_weight"], settings["style_weight"], settings["tv_weight"]) == (1, 1e4, 10)
    assert settings["num_steps"] == 500 and settings["size"] == 48


def test_moving_the_widgets_changes_the_settings(explorer):
    explorer.sliders["style_weight"].value = 0.1
    explorer.style_layers.value = ("relu1_1", "relu3_1")
    explorer.content_layer.value = "conv4_2"
    settings = explorer.settings()
    assert settings["style_weight"] == pytest.approx(0.1)
    assert settings["style_layers"] == ["relu1_1", "relu3_1"] and settings["content_layers"] == ["conv4_2"]
    slider = explorer.sliders["tv_weight"]
    assert (slider.base, slider.min, slider.max) == (10, -1, 7)  # log scale: 0.1 ... 1e7


def test_a_second_style_blends_with_the_first_by_the_slider(explorer):
    assert explorer.blend.disabled and len(explorer.styles()) == 1
    explorer.second_style.value = "mosaic"
    explorer.blend.value = 0.7
    assert not explorer.blend.disabled
    assert explorer.settings()["style_blend"] == pytest.approx([0.7, 0.3])
    first, second = explorer.styles()
    assert first is explorer.images()[1] and second.size == (512, 384)
    explorer.second_style.value = "none"
    assert explorer.settings()["style_blend"] is None and explorer.blend.disabled


def test_the_box_gives_a_second_style_and_says_when_it_has_none(explorer, tmp_path):
    explorer.second_style.value = "the box"
    with pytest.raises(ImageLoadError, match='2nd style: load an image with the box and "use as 2nd style" first'):
        explorer.styles()
    (tmp_path / "red.png").write_bytes(png_bytes())
    assert explorer.load("second", str(tmp_path / "red.png"))
    assert explorer.second_style.value == "the box"
    assert explorer.styles()[1].getpixel((0, 0)) == (255, 0, 0)
    assert "2nd style: " in explorer.status.value and "(40x30 pixels)" in explorer.status.value
    explorer.pair.value = widgets.PAIRS[2]  # a new pair keeps the second style
    assert explorer.styles()[1].getpixel((0, 0)) == (255, 0, 0)


def test_scale_colours_and_fast_reach_the_settings(explorer):
    explorer.style_scale.value = 0.5
    explorer.colours.value = "histogram"
    explorer.fast.value = True
    settings = explorer.settings()
    assert (settings["style_scale"], settings["preserve_colors"], settings["fast"]) == (0.5, "histogram", True)
    assert (explorer.style_scale.min, explorer.style_scale.max) == (-2, 2)  # 1/4 ... 4
    assert [value for label, value in widgets.COLOURS] == [False, "luminance", "histogram"]


def test_a_run_with_two_styles_original_colours_and_fast(explorer):
    explorer.second_style.value = "swirls"
    explorer.colours.value = "luminance"
    explorer.fast.value = True
    explorer.num_steps.value = 4
    assert explorer.run(wait=True)
    assert explorer.result is not None, explorer.status.value
    assert explorer.preview.value == widgets.to_png(explorer.result.image)
    assert "done: " in explorer.status.value


def test_an_upload_replaces_one_side_until_a_pair_is_chosen(explorer):
    pair_content, pair_style = explorer.images()
    send_upload(explorer.style_file, "red.png", png_bytes())
    content, style = explorer.images()
    assert content is pair_content and style.getpixel((0, 0)) == (255, 0, 0)
    assert Image.open(io.BytesIO(explorer.style_view.value)).size == (40, 30)
    explorer.pair.value = widgets.PAIRS[2]  # chelsea + mosaic
    content, style = explorer.images()
    assert style.size != (40, 30) and content is not pair_content


def test_an_empty_upload_leaves_the_images_and_says_why(explorer):
    before = explorer.images()
    send_upload(explorer.content_file, "big.jpg", b"")
    assert explorer.images() == before
    status = explorer.status.value
    assert "content file: big.jpg: the upload arrived empty: Colab&#x27;s ipywidgets 7 loses uploads" \
        in status and "files.upload()" in status and 'color:#b00' in status


def test_an_upload_colab_lost_entirely_says_why(explorer):
    """ipywidgets 7 on Colab: the browser bumps the counter, but no file reaches the kernel."""
    if not ipywidgets_7():
        pytest.skip("ipywidgets 8 has no upload counter: its uploads over 1 MB arrive")
    explorer.style_file.set_trait("_counter", explorer.style_file._counter + 1)
    assert explorer.style_file.value == {}
    assert "style file: the upload arrived empty: Colab&#x27;s" in explorer.status.value


@pytest.mark.parametrize("name, content, message", [
    ("notes.txt", b"just some text\n", "content file: notes.txt: not an image file"),
    ("huge.png", b"\0" * (20 * 2**20 + 1), "content file: huge.png: 20.0 MB, more than the "
                                            "explorer&#x27;s upload limit of 20 MB"),
])
def test_a_bad_upload_gets_one_line(explorer, name, content, message):
    before = explorer.images()
    send_upload(explorer.content_file, name, content)
    assert explorer.images() == before
    assert message in explorer.status.value and "\n" not in explorer.status.value


def test_a_good_upload_is_named_in_the_status_line(explorer):
    send_upload(explorer.content_file, "red.png", png_bytes())
    assert explorer.images()[0].getpixel((0, 0)) == (255, 0, 0)
    assert "content file: red.png (40x30 pixels)" in explorer.status.value


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder served over http on 127.0.0.1 (a local stand-in for an image URL)."""
    monkeypatch.setenv("D2LSTYLE_CACHE", str(tmp_path / "cache"))  # URLs are cached there
    folder = tmp_path / "site"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_in_the_box_becomes_the_content(explorer, served):
    folder, base = served
    (folder / "blue.png").write_bytes(png_bytes((30, 20), (0, 0, 255)))
    style = explorer.images()[1]
    explorer.location.value = f"  {base}/blue.png "
    explorer.use_as_content.click()
    content, still = explorer.images()
    assert content.size == (30, 20) and content.getpixel((5, 5)) == (0, 0, 255) and still is style
    assert f"content: {base}/blue.png (30x20 pixels)" in explorer.status.value
    assert Image.open(io.BytesIO(explorer.content_view.value)).size == (30, 20)


def test_a_url_that_fails_gets_one_line(explorer, served):
    folder, base = served
    (folder / "page.html").write_text("<html>not a picture</html>")
    assert explorer.load("style", f"{base}/missing.png") is False
    assert f"style: cannot download {base}/missing.png: HTTP 404 File not found" in explorer.status.value
    assert explorer.load("style", f"{base}/page.html") is False
    assert f"style: {base}/page.html: not an image file" in explorer.status.value


def test_a_path_in_the_box_becomes_the_style(explorer, tmp_path):
    (tmp_path / "red.png").write_bytes(png_bytes())
    content = explorer.images()[0]
    explorer.location.value = str(tmp_path / "red.png")
    explorer.use_as_style.click()
    assert explorer.images()[0] is content and explorer.images()[1].getpixel((0, 0)) == (255, 0, 0)
    assert f"style: {tmp_path / 'red.png'} (40x30 pixels)" in explorer.status.value
    explorer.pair.value = widgets.PAIRS[2]  # choosing a pair forgets it, as it forgets uploads
    assert explorer.images()[1].size != (40, 30)


@pytest.mark.parametrize("location, message", [
    ("", "content: type a path or an http(s) URL in the box first"),
    ("{tmp}/nowhere.png", "content: {tmp}/nowhere.png: no such file"),
    ("{tmp}/notes.txt", "content: {tmp}/notes.txt: not an image file"),
])
def test_a_bad_path_gets_one_line(explorer, tmp_path, location, message):
    (tmp_path / "notes.txt").write_text("just some text\n")
    before = explorer.images()
    explorer.location.value = location.format(tmp=tmp_path)
    explorer.use_as_content.click()
    assert explorer.images() == before
    assert message.format(tmp=tmp_path) in explorer.status.value and 'color:#b00' in explorer.status.value


def test_run_updates_the_preview_and_the_loss_curves(explorer):
    preview, losses = explorer.preview.value, explorer.losses.value
    assert explorer.run(wait=True)
    result = explorer.result
    assert len(result.history) == 3 and result.stopped is None
    assert explorer.preview.value == widgets.to_png(result.image) != preview
    assert explorer.losses.value != losses
    assert explorer.status.value.count("done: 3 steps") == 1
    assert not explorer.running and not explorer.run_button.disabled and explorer.stop_button.disabled


def test_stop_ends_the_run_and_a_second_run_is_refused_meanwhile(explorer):
    explorer.num_steps.value = 1000
    assert explorer.run()
    deadline = time.monotonic() + 60
    while not explorer.history and time.monotonic() < deadline:
        time.sleep(0.02)  # until the first step has been taken
    assert explorer.running and explorer.run_button.disabled
    assert explorer.run() is False and "already running" in explorer.status.value
    explorer.stop()
    explorer.wait(timeout=60)
    assert not explorer.running
    assert explorer.result.stopped.startswith("stopped by callback")
    assert 1 <= len(explorer.result.history) < 1000


def test_a_failing_run_says_why_in_the_status_line(explorer):
    explorer.pair.value = widgets.PAIRS[3]  # rocket.jpg, 640 x 427: at size 32 it is 32 x 21
    explorer.size.value = 32
    explorer.content_layer.value = "pool5"  # after five poolings: needs 32 pixels a side
    assert explorer.run(wait=True)
    assert "SettingError: the content image, resized to 32x21 pixels, is too small for layer pool5" \
        in explorer.status.value
    assert not explorer.running and not explorer.run_button.disabled
    assert explorer.result is None


def test_it_displays_as_a_widget_with_a_plain_text_fallback(explorer):
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"] == {
        "version_major": 2, "version_minor": 0, "model_id": explorer.widget.model_id}
    assert bundle["text/plain"] == widgets.NO_WIDGET_VIEW and "JupyterLab" in bundle["text/plain"]


def test_display_shows_the_same_view_as_its_root_widget(explorer):
    """``display(explorer)`` publishes what ``display(explorer.widget)`` does (ipywidgets 7 through
    the widget's ``_ipython_display_``, 8 through its ``_repr_mimebundle_``), text aside."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() publishes only inside a shell, as in a kernel
    with capture_output() as captured:
        display(explorer)
        display(explorer.widget)
    ours, root = (output.data for output in captured.outputs)
    view = "application/vnd.jupyter.widget-view+json"
    assert ours[view] == root[view] and root[view]["model_id"] == explorer.widget.model_id
    assert ours["text/plain"] == widgets.NO_WIDGET_VIEW and root["text/plain"].startswith("VBox(")


def test_notebook_06_runs_through_without_ipywidgets(tmp_path, monkeypatch):
    """The explorer's notebook, in smoke mode, in a kernel where `import ipywidgets` fails: one
    clear line instead of the explorer, and the rest of the notebook still runs."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["ipywidgets"] = None\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(root)]))
    monkeypatch.setenv("D2LSTYLE_SMOKE", "1")
    monkeypatch.setenv("D2LSTYLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(root / "notebooks" / "06_explorer.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    printed = "".join(output.get("text", "") for output in outputs)
    assert widgets.NEEDS_WIDGETS + "\n" in printed
    assert not any("application/vnd.jupyter.widget-view+json" in output.get("data", {})
                   for output in outputs)
    assert any("image/jpeg" in output.get("data", {}) for output in outputs)  # the run's picture
