"""Checkpoints of a ``TrainState`` over an orbax ``CheckpointManager``.

A checkpoint holds the whole ``TrainState`` (parameters, optimizer state, EMA, step, data position,
base key). ``restore`` reads it into an abstract target (``jax.ShapeDtypeStruct`` leaves with
shardings), so arrays land directly on the devices and layout a run expects.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

__all__ = ["Checkpointer", "abstract_with_shardings"]


def abstract_with_shardings(abstract, shardings):
    """Attaches ``shardings`` (a matching pytree, or one sharding for all) to abstract leaves."""
    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=shardings), abstract
        )
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )


class Checkpointer:
    """Saves and restores train states in ``directory`` (keeps the newest ``max_to_keep``).

    Args:
        directory: checkpoint folder (created if missing); steps become subfolders.
        max_to_keep: number of checkpoints kept.
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 3):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def save(self, step: int, state) -> None:
        """Writes ``state`` as checkpoint ``step`` (asynchronously; ``wait`` or ``close`` ends)."""
        self.manager.save(int(step), args=ocp.args.StandardSave(state), force=True)

    def latest_step(self) -> int | None:
        """The newest saved step, or None."""
        return self.manager.latest_step()

    def restore(self, abstract_state, step: int | None = None):
        """Reads checkpoint ``step`` (default: newest) into the structure of ``abstract_state``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise ValueError(f"checkpoint: no checkpoint found in {self.manager.directory}")
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

    def wait(self) -> None:
        """Blocks until pending saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases the manager."""
        self.manager.wait_until_finished()
        self.manager.close()
