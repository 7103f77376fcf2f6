"""Deterministic, resumable batches from a dataset directory written by ``make_dataset``."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxmicro.data._build import read_metadata


class Loader:
    """Shuffled batches of a sharded dataset; batch ``step`` is a pure function of (key, step).

    Epoch ``e`` visits the samples in the order ``jax.random.permutation(fold_in(key, e), n)``;
    batch ``step`` of the run is batch ``step % steps_per_epoch`` of epoch
    ``step // steps_per_epoch``. Iteration keeps only the step counter, so ``state()`` /
    ``restore(state)`` resume exactly, and ``batch_at(step)`` gives any batch directly. With
    ``drop_remainder`` (default) every batch is full and the last partial batch of an epoch is
    skipped. Shards are read on first use and kept in memory.

    Example::

        loader = Loader("data/voronoi-rgb", batch_size=4, key=jax.random.key(0))
        for batch in itertools.islice(loader, 10):
            x = batch["x"]          # (4, 64, 64, 64, 3)
        state = loader.state()      # {'step': 10}

    Batches are dictionaries of NumPy arrays: ``x`` (batch, *sample_shape), ``index`` (positions in
    the dataset) and one array per numeric label. ``labels`` holds every numeric label of the
    whole dataset (name -> ``(n,)``), e.g. for normalization statistics.
    """

    def __init__(self, directory, batch_size: int, key: jax.Array, *, drop_remainder: bool = True):
        self.directory = Path(directory)
        self.metadata = read_metadata(directory)
        self.n = int(self.metadata["n_samples"])
        if not 1 <= batch_size <= self.n:
            raise ValueError(
                f"batch_size: expected 1..{self.n} (the dataset size), got {batch_size}"
            )
        self.batch_size = int(batch_size)
        self.key = key
        self.drop_remainder = drop_remainder
        counts = [s["count"] for s in self.metadata["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(counts)])
        self._shards: dict[int, dict[str, np.ndarray]] = {}
        self._order: tuple[int, np.ndarray] | None = None
        labels = self.metadata["labels"]
        self.labels = {
            k: np.asarray([label[k] for label in labels])
            for k in labels[0]
            if all(isinstance(label[k], int | float) for label in labels)
        }
        self.step = 0

    @property
    def steps_per_epoch(self) -> int:
        whole, rest = divmod(self.n, self.batch_size)
        return whole + (1 if rest and not self.drop_remainder else 0)

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            perm = jax.random.permutation(jax.random.fold_in(self.key, epoch), self.n)
            self._order = (epoch, np.asarray(perm))
        return self._order[1]

    def _shard(self, i: int) -> dict[str, np.ndarray]:
        if i not in self._shards:
            with np.load(self.directory / self.metadata["shards"][i]["file"]) as f:
                self._shards[i] = {"x": f["x"]}
        return self._shards[i]

    def samples(self, index) -> np.ndarray:
        """The samples at dataset positions ``index`` (int array), stacked."""
        index = np.asarray(index)
        shard = np.searchsorted(self._starts, index, side="right") - 1
        return np.stack(
            [self._shard(s)["x"][i - self._starts[s]] for s, i in zip(shard, index, strict=True)]
        )

    def batch_at(self, step: int, rows: slice | None = None) -> dict[str, np.ndarray]:
        """Batch number ``step`` of the run (pure: depends only on key, batch size and step).

        ``rows`` selects part of the batch (a process's share on several hosts); only those
        samples are read.
        """
        epoch, b = divmod(int(step), self.steps_per_epoch)
        index = self._permutation(epoch)[b * self.batch_size : (b + 1) * self.batch_size]
        if rows is not None:
            index = index[rows]
        batch = {"x": self.samples(index), "index": index}
        batch.update({k: v[index] for k, v in self.labels.items()})
        return batch

    def state(self) -> dict:
        """Position of the iterator (JSON-serializable)."""
        return {"step": self.step}

    def restore(self, state: dict) -> None:
        """Continues from a position returned by ``state()``."""
        self.step = int(state["step"])

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self.batch_at(self.step)
        self.step += 1
        return batch
