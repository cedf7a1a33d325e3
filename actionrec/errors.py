"""User-facing errors: the CLI prints these as one line (no traceback) and exits with status 2.

Every error a user can cause is one of these, raised with a message that names the file, line,
key or value at fault and what was expected.
"""


class ActionrecError(Exception):
    """Bad input from the user: a file, a line, a key or a value, named in the message.

    A message names an option of the call that failed as ``{option}``, and ``options`` says how
    a Python caller gives each (``{"resume": "resume=True"}``): ``str()`` reads so, and the CLI
    words the same message with its flags (``worded``). No library message names a flag.
    """

    def __init__(self, message: str = "", options: dict[str, str] | None = None):
        self.template, self.options = message, dict(options or {})
        super().__init__(self.worded({}))

    def worded(self, flags: dict[str, str]) -> str:
        """The message with each ``{option}`` as ``flags`` names it, else as Python gives it."""
        text = self.template
        for option, python in self.options.items():
            text = text.replace("{" + option + "}", flags.get(option, python))
        return text


class ConfigError(ActionrecError):
    """A config file, key or value that is not valid; names the file and the dotted key."""


class CliError(ActionrecError):
    """A command-line usage error: a flag or argument that does not fit."""


class VideoError(ActionrecError, RuntimeError):
    """A video or frame folder that cannot be read; the message starts with its path."""


class ListFormatError(ActionrecError, ValueError):
    """A list or label-map file that does not follow its format; names file and line."""


class CheckpointError(ActionrecError):
    """A weights/checkpoint file that is missing, unsafe, unreadable or does not fit the model."""


class TrainingDiverged(ActionrecError):
    """A non-finite loss: names the epoch, the step and the last good checkpoint."""


class NoReadableVideo(ActionrecError):
    """Every entry a step needed was unreadable (a whole list, or too many in a row)."""


class NonFiniteOutput(ActionrecError):
    """A model produced NaN or infinite scores: diverged weights or broken input."""


class Interrupted(ActionrecError):
    """Ctrl-C: says where the work done so far is (the CLI exits with status 130)."""
