"""Prefect tasks over the `uda` package. Importing this package first sets the offline defaults.

Prefect and MLflow read these at import time, so they are set before either is imported: state stays
inside the project (git-ignored) and nothing phones home from a machine without internet.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

for _key, _value in {
    "PREFECT_HOME": str(ROOT / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    # A fresh PREFECT_HOME migrates its database first; on a busy 2-core machine that outlasts the 20 s default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # A server that stops answering fails the stage in seconds rather than minutes of retries (the defaults
    # retry for about five); a multi-machine deployment may raise them.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "PREFECT_CLIENT_MAX_RETRIES": "2",
}.items():
    os.environ.setdefault(_key, _value)

# Services started by `uda services` (a Prefect server and an MLflow server on loopback) are used while they run.
from uda.services import discover  # noqa: E402

for _key, _value in discover(ROOT).items():
    os.environ.setdefault(_key, _value)
