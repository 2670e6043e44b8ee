"""The one exception type that carries a message meant for the person using Glassbox.

Anything raised as `GlassboxError` is shown as-is in the UI and as a one-line `error:` in the CLI;
any other exception is a bug and is reported as such.
"""


class GlassboxError(Exception):
    """A problem the user can act on (bad input, unknown name, missing weights...)."""
