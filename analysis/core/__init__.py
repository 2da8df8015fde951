"""The bottom layer: facts every package shares and that import nothing of the project.

- ``registry``: ``HParam`` and ``Registry``, the primitives of every registry (losses, datasets, models,
  confidence scores).
- ``layout``: where a study keeps its files (``runs/<study>/``).
- ``tables``: the Parquet tables under it, the contract between the writers in ``study`` and the readers in
  ``analysis``.
- ``statuses``: the trial statuses and their one MLflow mapping.
- ``catalogue``: the metrics reports show: key, label, which direction is better, format.
- ``errors``: ``UsageError``, the refusal of bad input.

See ARCHITECTURE.md for the layers.
"""
