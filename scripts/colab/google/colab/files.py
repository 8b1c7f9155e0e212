"""Stand-in for ``google.colab.files``: Colab asks the browser for files; here there is none."""


def upload() -> dict:
    """Colab: ``{file name: bytes}`` of the files chosen in the browser. Here: nothing."""
    print("google.colab stand-in: no browser, nothing uploaded")
    return {}


def download(filename: str) -> None:
    """Colab: sends ``filename`` to the browser. Here: only checks that it exists."""
    with open(filename, "rb"):
        pass
