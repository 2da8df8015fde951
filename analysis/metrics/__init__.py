"""Pure metric functions on tensors/arrays (no Ray, no MLflow)."""
