"""Device and precision handling shared by the stages: one place that knows about autocast."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

# the names of --precision (oldphoto.options.PRECISION_NAMES) -> autocast dtypes
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# device types that run every kernel the stages use: float64 arithmetic, antialiased resampling.  On the
# others (Apple MPS: no float64 at all, antialiased bilinear only in recent PyTorch) those few small steps
# run on the host.
FULL_KERNEL_DEVICES = ("cpu", "cuda")


def host_for(device: torch.device | str) -> torch.device:
    """Where the float64 and antialiasing steps for tensors on ``device`` run: ``device`` itself where
    it has those kernels (CPU, CUDA), else the CPU."""
    device = torch.device(device)
    return device if device.type in FULL_KERNEL_DEVICES else torch.device("cpu")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):  # ("gpu", None: torch's own errors, not about the option)
        raise ValueError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {name!r}") from None
    if device.type not in ("cpu", "cuda", "mps"):  # (meta, xpu, ...: no path of ours runs there)
        raise ValueError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but PyTorch sees no CUDA GPU (try --device auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("--device mps was asked for but this PyTorch has no Apple MPS support")
    return device


def precision_problem(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` cannot run on ``device``, or None (nothing said: the command line asks this
    before any photo, the Restorer again when it is built)."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
    if precision == "fp16" and device.type == "cpu":
        return "--precision fp16 needs a GPU (cuda or mps); on a CPU use bf16 or fp32"
    if precision == "bf16" and device.type == "mps":
        return "--precision bf16 is not supported on Apple MPS; use fp16 or fp32"
    if precision != "fp32":
        # autocast's own rules, asked up front rather than at the first network of the first photo: MPS
        # autocast needs PyTorch 2.5 or later, and older PyTorch refuses bf16 on GPUs without it
        try:
            torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])
        except RuntimeError as exc:
            return (f"--precision {precision} cannot run on {device} with PyTorch {torch.__version__} "
                    f"({exc}); use --precision fp32")
    return None


def check_precision(precision: str, device: torch.device) -> None:
    """Reject combinations autocast cannot run; bf16 on a CPU without native bf16 only gets a notice."""
    problem = precision_problem(precision, device)
    if problem:
        raise ValueError(problem)
    if precision == "bf16" and device.type == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        if "AVX512" not in capability and "AMX" not in capability:
            # (a warning: asked for to go faster, it may go several times slower, which is worth saying)
            log.warning("this CPU (%s) has no native bf16 instructions; bf16 will be emulated and may be "
                        "slower than fp32", capability)


class Runner:
    """Runs modules on one device under one precision; inputs and outputs stay float32 on the CPU side."""

    def __init__(self, device: torch.device | str = "cpu", precision: str = "fp32") -> None:
        self.device = torch.device(device)
        check_precision(precision, self.device)
        self.precision = precision
        if self.device.type == "cuda":
            # photos of one size (a folder, the tiles of a photo) repeat the same shapes: let cuDNN pick
            # its fastest algorithm per shape once (changes nothing on a CPU)
            torch.backends.cudnn.benchmark = True

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    def __call__(self, fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
        # non-blocking copies only to CUDA: on MPS a non-blocking copy from pageable host memory reads the
        # source when the stream runs, and the caller's source (a temporary batch) may be freed by then
        non_blocking = self.device.type == "cuda"
        with torch.inference_mode(), self.autocast():
            out = fn(*[t.to(self.device, non_blocking=non_blocking) for t in tensors])
        return out.float()
