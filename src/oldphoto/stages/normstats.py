"""Whole-photo instance-norm statistics for tiled inference.

Every global-restoration network normalises its features with parameter-free instance norm: the mean
and variance over the *whole* image.  Run tile by tile, each tile would be normalised with its own
statistics, so a tile showing mostly sky and one showing mostly a dark coat would be restored with
different contrast and tone — blending hides the seam but not the blotchy result.

:class:`GlobalInstanceNorm` fixes that with one extra pass: in the *collect* pass the networks run
normally while the per-channel mean and mean square of each instance-norm input are accumulated over
every call (pixel-weighted); in the *apply* pass every instance norm uses those statistics.

What the collect pass runs on is the caller's choice.  The restore stage runs it once on the photo
scaled down to one tile's area (:func:`oldphoto.stages.restore.overview`): every layer there sees the
statistics of its own whole (smaller) image, so the estimate has no tile-statistics error upstream, only
the change of scale.  On real photos that came closer to the whole-image result than a collect pass over
all full-resolution tiles (whose upstream layers still normalise per tile), at a quarter to two thirds
of its cost (``benchmarks/cpu_speed.md``, "Tiled photos: the statistics pass").  With exact statistics,
tiles match the whole-image result up to the networks' receptive field.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterable

import torch
from torch import nn

from oldphoto.stages.runtime import host_for

# The override is per thread: Restorers made by ``with_options`` share their networks, and a thread that
# tiles a photo with its statistics must neither use another thread's nor remove its override on leaving.
# Each overridden norm's forward asks this thread's context (none: the class's own forward).
_local = threading.local()
_lock = threading.Lock()
_users: dict[int, int] = {}  # id(norm) -> how many contexts (all threads) override it now


class GlobalInstanceNorm:
    """Context manager that overrides every parameter-free ``InstanceNorm2d`` inside ``modules``, in the
    thread that enters it (other threads running the same modules keep theirs)."""

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        self.norms = [m for module in modules for m in module.modules()
                      if isinstance(m, nn.InstanceNorm2d) and not m.affine and not m.track_running_stats]
        self.mode = "collect"
        # statistics are keyed by (norm, how many times that norm ran before in this tile): a network may
        # skip a branch on some tiles (the partial nonlocal on a tile without defects), so the n-th norm
        # call of one tile need not be the n-th of another
        self._index = {id(m): i for i, m in enumerate(self.norms)}
        self._calls: dict[int, int] = {}
        self._acc: dict[tuple[int, int], list[torch.Tensor]] = {}  # key -> [count, sum, sum of squares]
        self._stats: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __enter__(self) -> GlobalInstanceNorm:
        owners = getattr(_local, "owners", {})
        self._outer = owners
        _local.owners = {**owners, **{id(norm): self for norm in self.norms}}
        with _lock:
            for norm in self.norms:
                if not _users.get(id(norm)):
                    norm.forward = types.MethodType(_dispatch, norm)
                _users[id(norm)] = _users.get(id(norm), 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        _local.owners = self._outer
        with _lock:
            for norm in self.norms:
                _users[id(norm)] -= 1
                if not _users[id(norm)]:
                    del _users[id(norm)]
                    del norm.forward  # back to the class's forward

    def start_tile(self) -> None:
        """Call before each tile (or other forward): counts each norm's calls from zero again."""
        self._calls = {}

    def collect(self) -> None:
        """Start a collect pass (statistics of the previous pass, if any, normalise meanwhile)."""
        self._finish()
        self.mode = "collect"

    def apply(self) -> None:
        """Finish collecting; from now on every norm uses the whole-photo statistics."""
        self._finish()
        self.mode = "apply"

    def _finish(self) -> None:
        if self._acc:
            self._stats = {k: ((s / n).float(), (sq / n - (s / n) ** 2).clamp_min(0).float())
                           for k, (n, s, sq) in self._acc.items()}
        self._acc = {}

    def _forward(self, norm: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
        i = self._index[id(norm)]
        k = (i, self._calls.get(i, 0))
        self._calls[i] = k[1] + 1
        xf = x.float()
        if self.mode == "collect":
            # every call counts whole (tiles collected one by one: overlaps twice, measured closer to
            # the exact statistics than counting only each tile's own core region)
            var, mean = torch.var_mean(xf, dim=(0, 2, 3), correction=0)
            n = xf.shape[0] * xf.shape[2] * xf.shape[3]
            acc = self._acc.get(k)
            # summed in float64: on the device where it has float64 (CPU, CUDA), else on the host (MPS)
            where = host_for(x.device)
            mean64, var64 = mean.to(where).double(), var.to(where).double()
            sums = [torch.tensor(float(n), dtype=torch.float64, device=where), mean64 * n,
                    (var64 + mean64 ** 2) * n]
            self._acc[k] = sums if acc is None else [a + b for a, b in zip(acc, sums, strict=True)]
            if k not in self._stats:  # first pass: plain per-tile instance norm
                return _normalise(xf, mean, var, norm.eps).to(x.dtype)
        elif k not in self._stats:  # a norm the collect pass never reached: this tile's statistics
            var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
            return ((xf - mean) * torch.rsqrt(var + norm.eps)).to(x.dtype)
        mean, var = self._stats[k]
        return _normalise(xf, mean.to(xf.device), var.to(xf.device), norm.eps).to(x.dtype)


def _dispatch(norm: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
    """An overridden norm's forward: the override of this thread's context, else the class's forward."""
    owner = getattr(_local, "owners", {}).get(id(norm))
    if owner is None:
        return type(norm).forward(norm, x)
    return owner._forward(norm, x)


def _normalise(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float) -> torch.Tensor:
    return (x - mean[None, :, None, None]) * torch.rsqrt(var + eps)[None, :, None, None]
