"""Exceptions the engine raises on purpose; their messages are shown to users as they are."""


class InputError(ValueError):
    """The caller's input (an image, a setting, a weights file) cannot be used."""


class Stopped(Exception):
    """The run ended early because its `should_stop()` returned true."""
