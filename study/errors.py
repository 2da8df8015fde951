"""The CLI's expected failures: bad input (``analysis.core.errors.UsageError``) and broken state, each printed
as one line with exit code 2. Any other exception is a bug and keeps its traceback (exit code 1)."""

from __future__ import annotations

MAX_MESSAGE_CHARS = 500
# Failures of the outside world beyond OSError (files, the network) and ValueError (bad input, JSON, most of
# Parquet's): databases, Parquet, YAML, MLflow; by class name in the exception's MRO, so naming one imports
# nothing.
EXPECTED = frozenset({
    "sqlalchemy.exc.SQLAlchemyError", "sqlite3.Error", "pyarrow.lib.ArrowException", "yaml.error.YAMLError",
    "mlflow.exceptions.MlflowException",
})


def expected_failure(err: BaseException) -> str | None:
    """The one line to print for an expected failure, None for a bug (ValueError counts as bad input: the
    study file's and the registries' refusals)."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(err).__mro__}
    if not isinstance(err, (ValueError, OSError)) and not names & EXPECTED:
        return None
    return one_line(err)


def one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
