"""d2lstyle.widgets without a browser: upload formats of ipywidgets 7 and 8, presets, Run/Stop, errors.

tests/test_browser.py drives the same explorer in JupyterLab and Chromium.
"""

import datetime
import io
import os
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from d2lstyle import ImageLoadError, PRESETS, vgg19, widgets


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


def send_upload(upload, name, content):
    """Set a FileUpload widget's value the way the browser's side of each ipywidgets version does."""
    import ipywidgets

    if ipywidgets.__version__.startswith("7."):  # value is read-only, computed when _counter changes
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

@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return vgg19(weights=None)  # random weights: the loop is what is tested, not the picture


@pytest.fixture
def explorer(net):
    pytest.importorskip("ipywidgets")
    return widgets.Explorer(net=net, size=48, num_steps=3, refresh=0.0)


def test_the_preset_fills_the_knobs_and_keeps_the_size(explorer):
    assert explorer.settings() == dict(
        preset="gatys", size=48, num_steps=3, content_layers=["relu4_2"],
        style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        content_weight=1.0, style_weight=10.0, tv_weight=10.0)
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


def test_an_upload_replaces_one_side_until_a_pair_is_chosen(explorer):
    pair_content, pair_style = explorer.images()
    send_upload(explorer.style_file, "red.png", png_bytes())
    content, style = explorer.images()
    assert content is pair_content and style.getpixel((0, 0)) == (255, 0, 0)
    assert Image.open(io.BytesIO(explorer.style_view.value)).size == (40, 30)
    explorer.pair.value = widgets.PAIRS[2]  # chelsea + mosaic
    content, style = explorer.images()
    assert style.size != (40, 30) and content is not pair_content


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
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert "JupyterLab" in bundle["text/plain"]


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
