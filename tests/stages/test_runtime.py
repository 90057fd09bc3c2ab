"""Device and precision checks of oldphoto.stages.runtime, for devices this machine does not have
(PyTorch's availability checks and autocast are replaced by fakes)."""

import pytest
import torch

from oldphoto.stages import runtime


def test_precision_that_autocast_refuses_is_an_option_error(monkeypatch):
    # PyTorch before 2.5 has no MPS autocast: torch.autocast("mps") raises when it is made, which used to
    # happen at the first network of the first photo (every photo of a folder failed on its own)
    def old_autocast(device_type, dtype=None, enabled=True):
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")

    monkeypatch.setattr(torch, "autocast", old_autocast)
    with pytest.raises(ValueError, match="--precision fp16 cannot run on mps"):
        runtime.check_precision("fp16", torch.device("mps"))
    runtime.check_precision("fp32", torch.device("mps"))  # fp32 needs no autocast


def test_bf16_on_a_cpu_without_native_bf16_is_said(monkeypatch, caplog):
    # asked for to go faster, emulated bf16 can go several times slower than fp32: said, not only logged
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    with caplog.at_level("WARNING", logger=runtime.log.name):
        runtime.check_precision("bf16", torch.device("cpu"))
    assert any("emulated" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_bf16_on_a_gpu_without_it_is_an_option_error(monkeypatch):
    def old_autocast(device_type, dtype=None, enabled=True):
        raise RuntimeError("Current CUDA Device does not support bfloat16. Please switch dtype to float16.")

    monkeypatch.setattr(torch, "autocast", old_autocast)
    with pytest.raises(ValueError, match="--precision bf16 cannot run on cuda"):
        runtime.check_precision("bf16", torch.device("cuda"))


def test_a_gpu_index_beyond_the_gpus_is_refused_up_front(monkeypatch):
    # models load lazily: without this check "--device cuda:1" on a one-GPU machine failed each photo
    # with "invalid device ordinal" at the first model load instead of stopping before any photo
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert runtime.resolve_device("cuda:0") == torch.device("cuda", 0)
    assert runtime.resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match="sees 1 CUDA GPU"):
        runtime.resolve_device("cuda:1")


@pytest.mark.parametrize("name", ["gpu", None, "meta", "cuda:x"])
def test_a_device_that_is_no_device_is_an_option_error(name):
    """"gpu" raised torch's RuntimeError and None a TypeError, from Restorer(device=...) (an API review)."""
    with pytest.raises(ValueError, match="--device must be auto, cpu, cuda, cuda:N or mps"):
        runtime.resolve_device(name)


def test_copies_to_a_device_other_than_cuda_are_blocking():
    # PyTorch's MPS backend reads a non-blocking copy's pageable source when the stream runs: the face
    # stage's temporary batch was freed by then (silently wrong pixels).  The meta device stands in.
    from torch.utils._python_dispatch import TorchDispatchMode

    copies = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func.overloadpacket in (torch.ops.aten._to_copy, torch.ops.aten.to):
                copies.append((kwargs.get("device"), kwargs.get("non_blocking", False)))
            return func(*args, **kwargs)

    with Record():
        out = runtime.Runner("meta")(lambda x: x * 2, torch.ones(1, 3, 8, 8))
    assert out.device.type == "meta"
    assert copies and not any(non_blocking for _, non_blocking in copies)
