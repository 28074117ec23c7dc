"""Execution engines for the per-recording batch stages (prepare, embed, score).

- ``local`` (default): :func:`hilbert_cli.batch.run_batch` runs the stage in this process.
- ``ray``: :mod:`hilbert_cli.engines.ray_engine` distributes recordings as a Ray Dataset over
  long-lived actors that build the stage worker once (``pip install 'hilbert-cli[ray]'``).

Both engines write exactly the same files: each stage worker writes its recording's outputs
atomically on a file system every worker sees, resume skips recordings already done, and a
bad recording becomes one error row; the stage's manifest rows (hilbert_cli.manifest) are built
on the driver from the same BatchResult fields (done, skipped, failed, seconds) and the outputs
on disk, so both engines write the same manifest. :mod:`hilbert_cli.engines.options` holds the Typer
options (``--engine``, ``--ray-address``, ``--ray-num-cpus``, ``--ray-num-gpus``,
``--ray-concurrency``) the command modules add.

Nothing here imports Ray at module import time.
"""

from __future__ import annotations

ENGINES = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'hilbert-cli[ray]'"

__all__ = ["ENGINES", "RAY_INSTALL_HINT"]
