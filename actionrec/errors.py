"""User-facing errors: the CLI prints these as one line (no traceback) and exits with status 2."""


class ActionrecError(Exception):
    """Bad input from the user: a file, a line, a key or a value, named in the message."""


class VideoError(ActionrecError, RuntimeError):
    """A video or frame folder that cannot be read; the message starts with its path."""


class ListFormatError(ActionrecError, ValueError):
    """A list or label-map file that does not follow its format; names file and line."""
