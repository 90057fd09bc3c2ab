"""The inference form of a network: the same function in eval mode, computed faster.

:func:`prepare` is applied by the pipeline to every network it runs.  Each step keeps the function the
network computes (up to float rounding, see tests/nets/test_inference.py) and the parameters' values:

* **channels-last** (NHWC) parameters, so oneDNN (CPU) and cuDNN (GPU) pick their NHWC convolution
  kernels (a convolution whose weight is channels-last converts its input itself).  On the project's
  CPU (one thread, Solvay photo) the bundled detector ran in 2.5 s instead of 3.4 s.  Networks with
  instance norm stay NCHW on a CPU: PyTorch's NHWC instance norm is slow and its NHWC group norm sums
  in one pass (errors up to 7e-4 on a 1 Mpx map), and the repair windows ran 9.2 s instead of 8.2 s.
* **instance norm as group norm** with one group per channel: the same statistics (Welford, within
  1e-6), but one fused kernel instead of PyTorch's batch-norm-on-a-reshaped-tensor route, about 2x
  faster on a CPU.
* **BatchNorm folded** into the convolution before it (for modules the caller owns: it removes the
  BatchNorm modules, so the state dict changes): one pass over the features less (2.5 s -> 2.2 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InferenceOptions", "FastInstanceNorm2d", "prepare", "fold_batchnorm"]


@dataclass
class InferenceOptions:
    """Which steps :func:`prepare` takes; :meth:`for_device` gives the measured defaults."""

    channels_last: bool = True  # networks without instance norm (the detector, the face generator)
    channels_last_norm: bool = False  # networks with instance norm (VAEs, mappings)
    fast_norm: bool = True
    fold_batchnorm: bool = True

    @classmethod
    def for_device(cls, device: torch.device | str) -> InferenceOptions:
        device = torch.device(device)
        if device.type == "cpu":
            return cls()
        # GPUs: channels-last everywhere feeds the tensor cores; instance norm keeps cuDNN's kernel
        # (benchmarks/gpu_bench.sh measures the result)
        cuda = device.type == "cuda"
        return cls(channels_last=cuda, channels_last_norm=cuda, fast_norm=False)


class FastInstanceNorm2d(nn.InstanceNorm2d):
    """``InstanceNorm2d`` computed by ``group_norm`` (one group per channel): same statistics, one kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats or x.dim() != 4 or x.shape[-1] * x.shape[-2] <= 1:
            return super().forward(x)  # running statistics and the degenerate cases keep torch's rules
        return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)


def _fast_norms(module: nn.Module) -> None:
    for sub in module.modules():
        if type(sub) is nn.InstanceNorm2d:
            sub.__class__ = FastInstanceNorm2d  # isinstance(InstanceNorm2d) still holds (GlobalInstanceNorm)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` in an ``nn.Sequential``
    into that convolution (the BatchNorm becomes ``nn.Identity``).  Returns how many were folded."""
    folded = 0
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for prev, name in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[prev], seq._modules[name]
            if not (isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d and bn.track_running_stats
                    and bn.running_mean is not None and conv.out_channels == bn.num_features):
                continue
            with torch.no_grad():
                # in float64 on the host, whatever the module's device: Apple MPS has no float64
                def host(t: torch.Tensor) -> torch.Tensor:
                    return t.detach().cpu().double()

                scale = torch.rsqrt(host(bn.running_var) + bn.eps)
                if bn.affine:
                    scale = scale * host(bn.weight)
                shift = -host(bn.running_mean) * scale
                if bn.affine:
                    shift = shift + host(bn.bias)
                bias = host(conv.bias) if conv.bias is not None else torch.zeros_like(shift)
                weight = host(conv.weight) * scale.reshape(-1, 1, 1, 1)
                conv.weight.copy_(weight.to(conv.weight.dtype))
                new_bias = (bias * scale + shift).to(device=conv.weight.device, dtype=conv.weight.dtype)
                if conv.bias is None:
                    conv.bias = nn.Parameter(new_bias, requires_grad=False)
                else:
                    conv.bias.copy_(new_bias)
            seq._modules[name] = nn.Identity()
            folded += 1
    return folded


def prepare(module: nn.Module, options: InferenceOptions, *, owned: bool) -> nn.Module:
    """Put ``module`` (eval mode) in its inference form, in place; returns it.

    ``owned``: the caller owns the module (the pipeline loaded it), so steps that change its structure
    (BatchNorm folding) may be taken; modules handed in by others keep their state dict and their
    function in train mode too.
    """
    has_norm = any(isinstance(m, nn.InstanceNorm2d) for m in module.modules())
    if options.fast_norm:
        _fast_norms(module)
    if owned and options.fold_batchnorm and not module.training:
        fold_batchnorm(module)
    if options.channels_last_norm if has_norm else options.channels_last:
        module.to(memory_format=torch.channels_last)
    return module
