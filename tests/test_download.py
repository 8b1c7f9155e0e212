"""Tests for d2lstyle.download: URLs onto disk within a size cap, a total deadline, few redirects.

A small HTTP server on 127.0.0.1, started here, plays the hostile web: a body that never ends, one
that trickles a byte at a time, redirects in a loop, an HTML page, an image over the cap. Every
handler loop is bounded in time, and ends at once when the client hangs up.
"""

import hashlib
import http.server
import io
import re
import socket
import threading
import time
import tracemalloc
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from d2lstyle import cli, images
from d2lstyle.download import cache_dir, cache_path, fetch, is_url
from d2lstyle.errors import ImageLoadError

DEADLINE = 1.0       # seconds: the total time a test gives a download
CAP = 1_000_000      # bytes: the size a test allows
SLACK = 1.0          # seconds: how much later than DEADLINE a refusal may come


def png_bytes(w=4, h=3, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


TINY = png_bytes()
# A PNG of noise does not compress: about 3 bytes a pixel, so 700x700 is about 1.5 MB > CAP.
BIG = png_bytes(700, 700)


class Hostile(http.server.BaseHTTPRequestHandler):
    """GET /NAME... serves the behaviour NAME; ``hits`` counts requests by path."""

    hits: dict = {}

    def log_message(self, *args):  # keep the test output clean
        pass

    def send(self, status, body=b"", headers=(), length=True):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Hostile.hits[self.path] = Hostile.hits.get(self.path, 0) + 1
        path = urllib.parse.urlsplit(self.path).path  # as a proxy, it is asked for whole URLs
        name = path.split("/")[1].split(".")[0]
        try:
            getattr(self, "serve_" + name.replace("-", "_"), self.serve_missing)()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def serve_missing(self):
        self.send(404, b"no such page")

    def serve_img(self):
        self.send(200, TINY, [("Content-Type", "image/png")])

    def serve_html(self):
        self.send(200, b"<!doctype html><html><body>Sign in to the Wi-Fi</body></html>",
                  [("Content-Type", "text/html")])

    def serve_captive(self):  # an HTML page the first time (a captive portal), then the image
        if Hostile.hits[self.path] == 1:
            self.serve_html()
        else:
            self.serve_img()

    def serve_big(self):  # announced: refused from the headers
        self.send(200, BIG, [("Content-Type", "image/png")])

    def serve_big_unannounced(self):  # no Content-Length: refused once CAP bytes have come
        self.send(200, BIG, [("Content-Type", "image/png")], length=False)

    def serve_forever(self):
        self.send(200, b"", [("Content-Type", "image/png")], length=False)
        chunk, stop = b"\0" * 65536, time.monotonic() + 20
        while time.monotonic() < stop:
            self.wfile.write(chunk)

    def serve_slow(self):  # a byte every 50 ms: each read is quick, the whole is not
        self.send(200, b"", [("Content-Type", "image/png"), ("Content-Length", "1000")],
                  length=False)
        for byte in TINY[:100]:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)

    def serve_slow_headers(self):  # trickles a header line that never ends
        self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        for _ in range(100):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.05)

    def serve_cut(self):  # announces 1000 bytes, sends 100, hangs up
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(TINY[:100])

    def serve_loop(self):
        self.send(302, headers=[("Location", "/loop")])

    def serve_hop(self):  # /hop/N redirects to /hop/N-1, ..., /hop/0 to /img
        n = int(self.path.split("/")[2])
        self.send(302, headers=[("Location", f"/hop/{n - 1}" if n > 0 else "/img/after-hops.png")])

    def serve_to_file(self):
        self.send(302, headers=[("Location", "file:///etc/passwd")])

    def serve_to_ftp(self):
        self.send(302, headers=[("Location", "ftp://127.0.0.1/x.png")])


@pytest.fixture(scope="module")
def server():
    """The base URL of a :class:`Hostile` server on 127.0.0.1, shut down after the module."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty download cache, never the user's, and the limits unset."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("D2LSTYLE_CACHE", str(folder))
    monkeypatch.delenv("D2LSTYLE_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.delenv("D2LSTYLE_MAX_DOWNLOAD_MB", raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return folder


def files_in(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def refused(call, match):
    """Run ``call``, which must raise ImageLoadError matching ``match`` with a one-line message;
    returns ``(seconds taken, peak bytes allocated meanwhile)``."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(ImageLoadError, match=match) as error:
            call()
        seconds = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(str(error.value).splitlines()) == 1
    return seconds, peak


class TestHostileServer:
    def test_endless_body_stops_at_the_cap(self, server, cache):
        url = server + "/forever.png"
        seconds, peak = refused(lambda: fetch(url, timeout=10, max_bytes=CAP),
                                f"^{re.escape(url)}: download exceeded the 1 MB limit")
        assert seconds < 5
        assert peak < CAP / 4  # streamed in chunks, never held whole
        assert files_in(cache) == []

    def test_slow_body_stops_at_the_deadline(self, server, cache):
        url = server + "/slow.png"  # 100 bytes at 20 a second: 5 s, twice DEADLINE
        seconds, _ = refused(lambda: fetch(url, timeout=DEADLINE, max_bytes=CAP),
                             f"^{re.escape(url)}: download did not finish within 1 s")
        assert DEADLINE - 0.1 < seconds < DEADLINE + SLACK
        assert files_in(cache) == []

    def test_slow_headers_stop_at_the_deadline(self, server, cache):
        url = server + "/slow-headers"
        seconds, _ = refused(lambda: fetch(url, timeout=DEADLINE),
                             f"^{re.escape(url)}: download did not finish within 1 s")
        assert seconds < DEADLINE + SLACK
        assert files_in(cache) == []

    def test_redirect_loop(self, server, cache):
        url = server + "/loop"
        seconds, _ = refused(lambda: fetch(url, timeout=DEADLINE),
                             f"^{re.escape(url)}: more than 5 redirects$")
        assert seconds < DEADLINE + SLACK
        assert files_in(cache) == []

    def test_five_redirects_are_followed_six_are_not(self, server, cache):
        # /hop/4 is five redirects away from the image: /hop/4, 3, 2, 1, 0 each redirect once.
        assert fetch(server + "/hop/4").read_bytes() == TINY
        with pytest.raises(ImageLoadError, match="more than 5 redirects"):
            fetch(server + "/hop/5")
        with pytest.raises(ImageLoadError, match="more than 1 redirects"):
            fetch(server + "/hop/1", max_redirects=1)

    @pytest.mark.parametrize("where, target", [("to-file", "file:///etc/passwd"),
                                                ("to-ftp", "ftp://127.0.0.1/x.png")])
    def test_redirect_to_another_scheme(self, server, cache, where, target):
        url = f"{server}/{where}"
        refused(lambda: fetch(url), f"^{re.escape(url)}: redirected to {re.escape(target)}, "
                                    r"which is not http\(s\)")
        assert files_in(cache) == []

    def test_html_page_is_not_an_image_and_not_cached(self, server, cache):
        url = server + "/html/photo.jpg"
        seconds, _ = refused(lambda: images.load_image(url, timeout=DEADLINE),
                             f"^{re.escape(url)}: not an image file")
        assert seconds < DEADLINE + SLACK
        assert files_in(cache) == []  # so that a later call fetches afresh

    def test_a_later_call_fetches_afresh_after_html(self, server, cache):
        Hostile.hits.clear()
        url = server + "/captive/photo.png"
        with pytest.raises(ImageLoadError, match="not an image file"):
            images.load_image(url)
        assert images.load_image(url).size == (4, 3)
        assert Hostile.hits == {"/captive/photo.png": 2}
        assert len(files_in(cache)) == 1

    @pytest.mark.parametrize("path", ["/big.png", "/big-unannounced.png"])
    def test_image_over_the_cap(self, server, cache, path):
        url = server + path
        seconds, peak = refused(lambda: fetch(url, timeout=DEADLINE, max_bytes=CAP),
                                f"^{re.escape(url)}: download exceeded the 1 MB limit")
        assert seconds < DEADLINE + SLACK
        assert peak < CAP / 4
        assert files_in(cache) == []

    def test_announced_size_is_refused_before_reading(self, server, cache):
        Hostile.hits.clear()
        with pytest.raises(ImageLoadError, match="exceeded the 1 MB limit"):
            fetch(server + "/big.png", max_bytes=CAP)
        # The same cap a byte larger than the image lets it through.
        assert fetch(server + "/big.png", max_bytes=len(BIG)).stat().st_size == len(BIG)

    def test_cap_from_the_environment(self, server, cache, monkeypatch):
        monkeypatch.setenv("D2LSTYLE_MAX_DOWNLOAD_MB", "0.5")
        with pytest.raises(ImageLoadError,
                           match=r"exceeded the 0\.5 MB limit .*D2LSTYLE_MAX_DOWNLOAD_MB"):
            images.load_image(server + "/big.png")

    def test_deadline_from_the_environment(self, server, cache, monkeypatch):
        monkeypatch.setenv("D2LSTYLE_DOWNLOAD_TIMEOUT", "0.5")
        start = time.monotonic()
        with pytest.raises(ImageLoadError, match=r"did not finish within 0\.5 s"):
            images.load_image(server + "/slow.png")
        assert time.monotonic() - start < 0.5 + SLACK

    @pytest.mark.parametrize("name, value", [("D2LSTYLE_MAX_DOWNLOAD_MB", "lots"),
                                             ("D2LSTYLE_DOWNLOAD_TIMEOUT", "-1"),
                                             ("D2LSTYLE_DOWNLOAD_TIMEOUT", "inf")])
    def test_bad_environment_value(self, server, monkeypatch, name, value):
        monkeypatch.setenv(name, value)
        message = f"^{name} must be a positive number, not '{value}'$"
        with pytest.raises(ImageLoadError, match=message):
            fetch(server + "/img/x.png")

    def test_cut_short_leaves_no_file(self, server, cache):
        url = server + "/cut.png"
        refused(lambda: fetch(url), f"^cannot download {re.escape(url)}: IncompleteRead")
        assert files_in(cache) == []

    def test_http_error(self, server, cache):
        url = server + "/nothing-here.png"
        refused(lambda: fetch(url), f"^cannot download {re.escape(url)}: HTTP 404 Not Found$")
        assert files_in(cache) == []

    def test_through_a_proxy(self, server, cache, monkeypatch):
        # The environment's proxy is used, as urllib would: the server here plays the proxy.
        monkeypatch.setenv("http_proxy", server)
        Hostile.hits.clear()
        url = "http://example.invalid/img/via-proxy.png"
        assert fetch(url).read_bytes() == TINY
        assert Hostile.hits == {url: 1}

    @pytest.mark.parametrize("scheme", ["http", "https"])
    def test_silent_server_stops_at_the_deadline(self, cache, scheme):
        # The kernel accepts the connection into the listening queue; nobody ever answers, neither
        # to the request nor to the TLS hello.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/x.png"
            seconds, _ = refused(lambda: fetch(url, timeout=DEADLINE),
                                 f"^{re.escape(url)}: download did not finish within 1 s")
        assert DEADLINE - 0.1 < seconds < DEADLINE + SLACK
        assert files_in(cache) == []

    def test_connection_refused(self, cache):
        with socket.socket() as sock:  # a port that was free a moment ago, with no one listening
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/x.png"
        refused(lambda: fetch(url), f"^cannot download {re.escape(url)}: .*refused")
        assert files_in(cache) == []


class TestCache:
    def test_downloads_once(self, server, cache):
        url = server + "/img/tiny.png"
        Hostile.hits.clear()
        path = fetch(url)
        assert path.parent == cache and path.read_bytes() == TINY
        assert fetch(url) == path and images.load_image(url).size == (4, 3)
        assert Hostile.hits == {"/img/tiny.png": 1}
        assert files_in(cache) == [path.name]  # no temporary file left over

    def test_name_is_hash_and_short_extension(self, tmp_path):
        url = "https://example.org/a/Photo.JPG?size=large"
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        assert cache_path(url, tmp_path) == tmp_path / f"{digest}.jpg"
        assert cache_path("https://example.org/page.html~backup", tmp_path).suffix == ""
        assert cache_path("https://example.org/", tmp_path).suffix == ""

    def test_very_long_last_segment(self, server, cache):
        url = server + "/img/" + "x" * 5000 + ".png"  # longer than any file name may be
        path = fetch(url)
        assert len(path.name) == 16 + len(".png") and path.read_bytes() == TINY

    def test_same_name_different_urls(self, server, cache):
        a, b = fetch(server + "/img/a/pic.png"), fetch(server + "/img/b/pic.png")
        assert a != b and a.parent == b.parent == cache

    def test_env_variable(self, cache):
        assert cache_dir() == cache

    def test_default(self, tmp_path, monkeypatch):
        monkeypatch.delenv("D2LSTYLE_CACHE")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache_dir() == tmp_path / "xdg" / "d2lstyle"

    @pytest.mark.parametrize("source, expected", [
        ("https://a.org/x.jpg", True), ("http://a.org/x.jpg", True),
        ("ftp://a.org/x.jpg", False), ("pictures/x.jpg", False), ("file:///etc/passwd", False),
    ])
    def test_is_url(self, source, expected):
        assert is_url(source) is expected

    @pytest.mark.parametrize("url", ["ftp://a.org/x.jpg", "file:///etc/passwd", "x.jpg"])
    def test_fetch_refuses_other_schemes(self, cache, url):
        with pytest.raises(ImageLoadError, match=rf"^{re.escape(url)}: is not http\(s\)"):
            fetch(url)
        assert files_in(cache) == []


class TestCommandLine:
    def test_slow_download_fails_in_one_line_and_keeps_the_output(self, server, tmp_path, capsys,
                                                                   monkeypatch):
        monkeypatch.setenv("D2LSTYLE_DOWNLOAD_TIMEOUT", str(DEADLINE))
        style = tmp_path / "style.png"
        style.write_bytes(TINY)
        out = tmp_path / "out.png"
        out.write_bytes(b"an earlier result")
        url = server + "/slow.png"
        start = time.monotonic()
        status = cli.main([url, str(style), "-o", str(out), "--weights", "none"])
        assert time.monotonic() - start < DEADLINE + SLACK
        stdout, stderr = capsys.readouterr()
        assert status == 1 and stdout == ""
        assert stderr == f"d2lstyle: error: {url}: download did not finish within 1 s " \
                         "(timeout=, or $D2LSTYLE_DOWNLOAD_TIMEOUT)\n"
        assert out.read_bytes() == b"an earlier result"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out.png", "style.png"]

    def test_big_download_fails_in_one_line(self, server, tmp_path, capsys, monkeypatch):
        monkeypatch.setenv("D2LSTYLE_MAX_DOWNLOAD_MB", "1")
        style = tmp_path / "style.png"
        style.write_bytes(TINY)
        out = tmp_path / "out.png"
        status = cli.main([str(style), server + "/forever.png", "-o", str(out)])
        stdout, stderr = capsys.readouterr()
        assert status == 1 and stdout == ""
        assert len(stderr.splitlines()) == 1 and "exceeded the 1 MB limit" in stderr
        assert not out.exists()
        assert files_in(tmp_path / "cache") == []
