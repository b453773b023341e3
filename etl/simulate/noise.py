"""Random numbers addressed by absolute sample index.

A machine-day is rendered in chunks to bound memory, and a fault can make a
batch overlap its predecessor. Both only stay consistent if the noise of a
sample does not depend on which chunk rendered it, so every random number
here is a pure function of (seed, machine, stream, sample index): values are
drawn in fixed blocks, each block seeded from its own index.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 8192
_OFFSET = 1 << 32  # keeps block indices of negative sample indices non-negative
_NORMAL, _UNIFORM = 0, 1


def derive_rng(seed: int, *key: int) -> np.random.Generator:
    """A generator for one purpose, independent of every other key.

    Args:
        seed: The master seed of the simulation.
        *key: Non-negative integers naming the purpose (machine index,
            stream id, block index, ...).

    Returns:
        A fresh PCG64 generator.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class BlockNoise:
    """Noise for one machine whose values depend only on the sample index."""

    def __init__(self, seed: int, machine_index: int, domain: int) -> None:
        """Bind the noise to a machine and a domain (sensor noise, jitter...).

        Args:
            seed: Master seed.
            machine_index: Index of the machine in the fleet.
            domain: Id separating this family of streams from others.
        """
        self._seed = seed
        self._machine = machine_index
        self._domain = domain

    def _draw(self, kind: int, stream: int, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.empty(0)
        first, last = start // _BLOCK, (stop - 1) // _BLOCK
        parts = []
        for block in range(first, last + 1):
            rng = derive_rng(self._seed, self._machine, self._domain, kind, stream, block + _OFFSET)
            parts.append(rng.standard_normal(_BLOCK) if kind == _NORMAL else rng.random(_BLOCK))
        values = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return values[start - first * _BLOCK : stop - first * _BLOCK]

    def normal(self, stream: int, start: int, stop: int) -> np.ndarray:
        """Standard normal values for sample indices ``start .. stop - 1``."""
        return self._draw(_NORMAL, stream, start, stop)

    def uniform(self, stream: int, start: int, stop: int) -> np.ndarray:
        """Uniform [0, 1) values for sample indices ``start .. stop - 1``."""
        return self._draw(_UNIFORM, stream, start, stop)

    def smooth(self, stream: int, start: int, stop: int, period: float) -> np.ndarray:
        """Slowly wandering noise of roughly unit variance.

        Standard normal knots every ``period`` samples, linearly
        interpolated: cheap, continuous across chunks, and with a
        correlation time of about ``period`` samples.

        Args:
            stream: Stream id.
            start: First sample index.
            stop: One past the last sample index.
            period: Knot spacing in samples (> 0).

        Returns:
            ``stop - start`` values.
        """
        index = np.arange(start, stop, dtype=np.float64) / period
        first = int(np.floor(index[0])) if len(index) else 0
        last = int(np.floor(index[-1])) + 2 if len(index) else 0
        knots = self.normal(stream, first, last)
        # Linear interpolation halves the variance midway between knots;
        # 1.22 restores a standard deviation close to one on average.
        return 1.22 * np.interp(index, np.arange(first, last), knots)
