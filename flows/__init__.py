"""Prefect flows, one per DVC stage (`python -m flows.<stage>`)."""

import tasks  # noqa: F401  (sets the offline and in-project state defaults before Prefect is imported)
