"""Stand-in for ``google.colab.output``: Colab's front end draws ipywidgets 7 widgets itself."""


def enable_custom_widget_manager() -> None:
    """Colab: lets third-party widgets draw. Here: nothing to do."""


def disable_custom_widget_manager() -> None:
    """Colab: back to Colab's own widget manager. Here: nothing to do."""
