"""Exceptions the engine raises on purpose; their messages are shown to users as they are."""


class InputError(ValueError):
    """The caller's input (an image, a setting, a weights file) cannot be used."""


class Cancelled(Exception):
    """The run was stopped because `should_stop()` returned true."""
