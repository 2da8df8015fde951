class UsageError(ValueError):
    """Bad input found before any work starts: printed as one line, exit code 2."""
