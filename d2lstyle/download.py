"""Getting a URL onto disk safely: http(s) only, a size cap, a total deadline and few redirects.

A download is streamed in chunks into a temporary file in the cache folder and renamed when
complete, so nothing is ever held whole in memory and no half file is ever left behind. Every way it
can fail raises :class:`ImageLoadError` with one line naming the URL and the limit that was hit.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import socket
import string
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import ImageLoadError

TIMEOUT = 30.0       # seconds for the whole download, redirects included
MAX_MB = 50.0        # megabytes (10**6 bytes)
MAX_REDIRECTS = 5
CHUNK = 64 * 1024    # bytes read from the network at a time
REDIRECTS = (301, 302, 303, 307, 308)


def cache_dir() -> Path:
    """Where downloaded images are kept: ``$D2LSTYLE_CACHE``, else ``~/.cache/d2lstyle``."""
    root = os.environ.get("D2LSTYLE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "d2lstyle"


def is_url(source) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def cache_path(url: str, directory: Path) -> Path:
    """``directory/<first 16 hex digits of sha256(url)><.ext>``: the extension only when it is short
    and plain (``.jpg``, ``.png``), so no URL, however long or odd, makes an unusable file name."""
    suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    return directory / (hashlib.sha256(url.encode()).hexdigest()[:16] + suffix)


def limit_from_env(name: str, default: float) -> float:
    """The positive number in environment variable ``name``, else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ImageLoadError(f"{name} must be a positive number, not {text!r}")
    return value


def fetch(url: str, *, timeout: float | None = None, max_bytes: int | None = None,
          max_redirects: int = MAX_REDIRECTS, directory: str | os.PathLike | None = None) -> Path:
    """Download ``url`` once into the cache (``directory``, default :func:`cache_dir`) and return
    the cached file's path.

    ``timeout`` is the total in seconds, redirects included (default ``$D2LSTYLE_DOWNLOAD_TIMEOUT``
    or 30); ``max_bytes`` caps the size (default ``$D2LSTYLE_MAX_DOWNLOAD_MB`` megabytes, or 50).
    Only http and https are followed, at most ``max_redirects`` times.
    """
    if timeout is None:
        timeout = limit_from_env("D2LSTYLE_DOWNLOAD_TIMEOUT", TIMEOUT)
    if max_bytes is None:
        max_bytes = int(limit_from_env("D2LSTYLE_MAX_DOWNLOAD_MB", MAX_MB) * 1e6)
    directory = Path(directory) if directory is not None else cache_dir()
    target = cache_path(url, directory)
    if target.is_file():
        return target
    limits = _Limits(url, time.monotonic() + timeout, timeout, max_bytes)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        response = _follow(url, max_redirects, limits)
        _stream(response, target, limits)
    except (TimeoutError, socket.timeout) as error:
        raise limits.too_slow() from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        if isinstance(error, ImageLoadError):
            raise
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageLoadError(f"cannot download {url}: {reason}") from error
    return target


class _Limits:
    """One download's limits, and the one-line error for each."""

    def __init__(self, url: str, deadline: float, timeout: float, max_bytes: int):
        self.url, self.deadline, self.timeout, self.max_bytes = url, deadline, timeout, max_bytes

    def remaining(self) -> float:
        """Seconds left before the deadline; raises the timeout error when there are none."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.too_slow()
        return left

    def too_slow(self) -> ImageLoadError:
        return ImageLoadError(f"{self.url}: download did not finish within {self.timeout:g} s "
                              "(timeout=, or $D2LSTYLE_DOWNLOAD_TIMEOUT)")

    def too_big(self) -> ImageLoadError:
        return ImageLoadError(f"{self.url}: download exceeded the {self.max_bytes / 1e6:g} MB "
                              "limit (max_bytes=, or $D2LSTYLE_MAX_DOWNLOAD_MB)")


def _follow(url: str, max_redirects: int, limits: _Limits) -> http.client.HTTPResponse:
    """The response to GET ``url`` after at most ``max_redirects`` redirects, each http(s)."""
    for hop in range(max_redirects + 1):
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            where = "" if hop == 0 else f"redirected to {url}, which "
            raise ImageLoadError(f"{limits.url}: {where}is not http(s); only http:// and https:// "
                                 "URLs are downloaded")
        if not urllib.parse.urlsplit(url).hostname:
            raise ImageLoadError(f"{limits.url}: no host name in {url}")
        response = _get(url, limits)
        location = response.getheader("Location")
        if response.status not in REDIRECTS or not location:
            if response.status != 200:
                response.close()
                raise ImageLoadError(f"cannot download {limits.url}: HTTP {response.status} "
                                     f"{response.reason}")
            return response
        response.close()  # the redirect's body is never read
        # As urllib does: a Location with spaces or non-ASCII characters is quoted, not refused.
        location = urllib.parse.quote(location.strip(), encoding="iso-8859-1",
                                      safe=string.punctuation)
        url = urllib.parse.urljoin(url, location)
    raise ImageLoadError(f"{limits.url}: more than {max_redirects} redirects")


def _get(url: str, limits: _Limits) -> http.client.HTTPResponse:
    """One GET of ``url``, through the environment's proxy if it names one (as urllib does)."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
        proxy = None
    https = parts.scheme == "https"
    Connection = http.client.HTTPSConnection if https else http.client.HTTPConnection
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if proxy:
        via = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        if https:  # a tunnel through the proxy, TLS end to end
            conn = Connection(via.hostname, via.port or 8080, timeout=limits.remaining())
            conn.set_tunnel(parts.hostname, parts.port)
        else:
            conn = http.client.HTTPConnection(via.hostname, via.port or 8080,
                                              timeout=limits.remaining())
            path = url
    else:
        conn = Connection(parts.hostname, parts.port, timeout=limits.remaining())
    conn._create_connection = lambda address, timeout, source: _connect(address, source, limits)
    try:
        conn.connect()
        conn.sock = _DeadlineSocket(conn.sock, limits)
        conn.request("GET", path, headers={"User-Agent": "d2lstyle"})
        response = conn.getresponse()
    except BaseException:
        conn.close()
        raise
    if conn.sock:  # one request per connection: the socket really closes when the response does
        conn.sock.close()
    return response


def _connect(address, source_address, limits: _Limits) -> socket.socket:
    """http.client's hook for opening the TCP connection: each address tried waits at most the time
    left, and so does the TLS handshake that follows (it runs under the socket's timeout)."""
    sock = socket.create_connection(address, limits.remaining(), source_address)
    sock.settimeout(limits.remaining())
    return sock


def _stream(response: http.client.HTTPResponse, target: Path, limits: _Limits) -> None:
    """``response``'s body into ``target``, in chunks, via a temporary file renamed at the end."""
    with response:
        length = response.getheader("Content-Length")
        if length and length.strip().isdigit() and int(length) > limits.max_bytes:
            raise limits.too_big()  # refused before reading a byte of it
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as file:
                size = 0
                while chunk := response.read1(CHUNK):
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise limits.too_big()
                    limits.remaining()  # the wall clock, whatever each read took
                    file.write(chunk)
                if response.length:  # the server closed before sending all it announced
                    raise http.client.IncompleteRead(b"", response.length)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise


class _DeadlineSocket:
    """A socket whose every read ends by the download's deadline, however slowly bytes arrive: each
    read waits at most the time left. Everything else is the wrapped socket's."""

    def __init__(self, sock: socket.socket, limits: _Limits):
        self._sock, self._limits = sock, limits

    def makefile(self, mode="rb"):
        return io.BufferedReader(_DeadlineReader(self._sock, self._limits))

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    """``sock.makefile("rb", buffering=0)`` (which keeps the socket open until it is closed), with
    the socket's timeout set to the time left before each read."""

    def __init__(self, sock: socket.socket, limits: _Limits):
        self._sock, self._raw, self._limits = sock, sock.makefile("rb", buffering=0), limits

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(self._limits.remaining())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()
