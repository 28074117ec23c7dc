"""Execution engines: where the per-recording stages (prepare, embed, score) run.

- ``base``: the Engine interface and the per-recording step every engine shares (resume,
  error rows; manifest rows once a run ends);
- ``local``: this machine, one recording at a time or ``--jobs N`` worker processes;
- ``ray`` (+ ``ray_actor``, ``ray_cluster``): a Ray cluster, long-lived actors per stage
  (``pip install 'hilbert-cli[ray]'``);
- ``runner``: ``get_engine`` (a name -> an Engine) and ``run_batch`` (a stage as callables);
- ``options``: the Typer options (``--engine``, ``--jobs``, ``--ray-*``) the commands add.

Every engine writes exactly the same files: each stage writes its recording's outputs
atomically on a file system every worker sees, resume skips recordings already done, a bad
recording becomes one error row, and the manifest rows are built on the driver from the same
BatchResult fields and the outputs on disk. Nothing here imports Ray (or anything heavy) at
package import time.
"""

from __future__ import annotations

ENGINES = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'hilbert-cli[ray]'"

__all__ = ["ENGINES", "RAY_INSTALL_HINT"]
