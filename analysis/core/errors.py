"""The refusal of bad input, raised by any layer; the CLI prints it as one line with exit code 2."""


class UsageError(ValueError):
    """Bad input found before any work starts: printed as one line, exit code 2."""
