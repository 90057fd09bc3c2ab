"""Latent mapping networks: VAE_A latent (degraded) → VAE_B latent (clean).

Three official variants, all working at the latent resolution (H/4 × W/4 of the photo):

* :class:`QualityMapping` (``Mapping_Model``): local branch only, for unstructured degradation.
* :class:`ScratchMapping` (``Mapping_Model_with_mask``): adds the *partial nonlocal* block
  (:class:`PartialNonLocal`, paper Eq. 7–10) that inpaints defect cells from clean cells anywhere in the
  photo. The official block materialises three N×N float32 matrices (N = H·W/16), which is why
  ``--with_scratch`` runs out of memory on large photos; here the attention is computed exactly, in chunks
  of query rows, with a peak bounded by :attr:`PartialNonLocal.chunk_bytes`.
* :class:`PatchAttentionMapping` (``Mapping_Model_with_mask_2``, the official ``--HR`` path): three
  :class:`PatchAttention` blocks (8×8, 4×4, 2×2 latent patches) that copy the most similar clean patch
  into each mostly-defective patch.

Masks always come at FULL image resolution, ``N×1×H×W`` in {0, 1}, 1 = defect; each block reduces them
to the latent grid with the official rules (see :func:`valid_key_mask`, :func:`latent_defect_mask`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from oldphoto.nets.blocks import ResnetBlock, conv_in_relu, require_key

# Working-set budget of one chunk of attention rows: the q×N logits (and the softmax of it) are the only
# buffers that grow with the photo, so bounding them bounds the peak of the whole block.
DEFAULT_CHUNK_BYTES = 256 * 2**20
# F.normalize's default eps, used by the official L1 renormalisation of the attention rows.
_L1_EPS = 1e-12


def _channel_ramp(latent_channels: int, width: int) -> list[int]:
    """Official channel schedule: double from the latent width up to ``width`` over four convs."""
    if width < latent_channels or width > 16 * latent_channels:
        raise ValueError(
            f"width must be between latent_channels ({latent_channels}) and 16× that, got {width}")
    return [min(latent_channels * 2**k, width) for k in range(5)]


def _down_layers(ramp: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for k in range(4):
        layers += conv_in_relu(ramp[k], ramp[k + 1])
    return layers


def _up_layers(ramp: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for k in (4, 3, 2):
        layers += conv_in_relu(ramp[k], ramp[k - 1])
    layers.append(nn.Conv2d(ramp[1], ramp[0], 3, padding=1))  # mapped latent: no norm, no activation
    return layers


def _count_res(sd: dict[str, torch.Tensor], prefix: str, start: int = 0) -> int:
    n = 0
    while f"{prefix}{start + n}.conv_block.1.weight" in sd:
        n += 1
    return n


def _check_mask(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != z.shape[0]:
        raise ValueError(f"mask must be N×1×H×W with N = {z.shape[0]}, got shape {tuple(mask.shape)}")
    return mask.to(device=z.device, dtype=z.dtype)


class QualityMapping(nn.Module):
    """Official ``Mapping_Model`` (36,135,232 parameters at the default size).

    ``latent_channels → … → width`` (four 3×3 convs + IN + ReLU, channels doubling), ``n_blocks``
    ResnetBlocks at ``width``, then back down to ``latent_channels``. Keys ``model.<i>.*``.
    ``forward(z) -> z'`` keeps the spatial size.
    """

    ARCH_NAME = "mapping_quality"

    def __init__(self, *, latent_channels: int = 64, width: int = 512, n_blocks: int = 6) -> None:
        super().__init__()
        self.config = {"latent_channels": latent_channels, "width": width, "n_blocks": n_blocks}
        ramp = _channel_ramp(latent_channels, width)
        self.model = nn.Sequential(*_down_layers(ramp), *[ResnetBlock(width) for _ in range(n_blocks)],
                                   *_up_layers(ramp))

    @classmethod
    def config_from_state_dict(cls, sd: dict[str, torch.Tensor]) -> dict:
        first = require_key(sd, "model.0.weight", cls.ARCH_NAME)
        width = require_key(sd, "model.9.weight", cls.ARCH_NAME).shape[0]
        return {"latent_channels": int(first.shape[1]), "width": int(width),
                "n_blocks": _count_res(sd, "model.", 12)}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


# ----------------------------------------------------------------------------------------- partial nonlocal
def valid_key_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Latent-resolution mask of cells that may serve as attention keys (1 = clean), official rule.

    ``B = bilinear(M) > 0`` (any defect the bilinear taps see invalidates the cell) and
    ``T = nearest(1 - M)`` (the top-left pixel of the cell must be clean): ``m = (1 - B) · T``.
    For an exact 4× reduction this reads pixels (4i+1..4i+2, 4j+1..4j+2) and (4i, 4j) only.
    """
    bil = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
    bil = (bil > 0).to(mask.dtype)
    near = F.interpolate(1 - mask, size=size, mode="nearest")
    return (1 - bil) * near


def attention_chunk_rows(n_keys: int, batch: int, element_size: int,
                         chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Query rows per chunk so that one ``batch × rows × n_keys`` buffer stays within ``chunk_bytes``."""
    return max(1, chunk_bytes // max(1, batch * n_keys * element_size))


def _attend_rows(theta_rows: torch.Tensor, phi: torch.Tensor, g: torch.Tensor,
                 key_mask: torch.Tensor) -> torch.Tensor:
    """Official partial attention for a block of query rows (every row sees ALL keys, so this is exact).

    softmax over all keys, times the key mask, L1-renormalised per row with ``max(sum, 1e-12)`` (rows with
    no valid key, or whose valid keys underflow, therefore give zeros), then the weighted sum of ``g``.
    """
    logits = torch.bmm(theta_rows, phi)                        # b × q × N
    if torch.is_grad_enabled():
        attn = torch.softmax(logits, dim=-1) * key_mask[:, None, :]
        attn = attn / attn.sum(dim=-1, keepdim=True).clamp_min(_L1_EPS)
    else:  # same arithmetic, in place: one extra q×N buffer at most
        attn = torch.softmax(logits, dim=-1)
        del logits
        attn.mul_(key_mask[:, None, :])
        attn.div_(attn.sum(dim=-1, keepdim=True).clamp_min_(_L1_EPS))
    return torch.bmm(attn, g)                                  # b × q × C


def partial_attention(theta: torch.Tensor, phi: torch.Tensor, g: torch.Tensor, key_mask: torch.Tensor,
                      chunk_rows: int | None = None, checkpoint: bool = False) -> torch.Tensor:
    """``y = renorm(softmax(θᵀφ) ⊙ m) · g`` computed in chunks of ``chunk_rows`` query rows.

    Shapes: ``theta`` b×N×C (queries), ``phi`` b×C×N (keys), ``g`` b×N×C (values), ``key_mask`` b×N
    (1 = valid key). ``chunk_rows=None`` means all rows at once (the dense reference).
    Returns b×N×C. Never holds more than ``chunk_rows × N`` logits per sample (plus their softmax).
    With autograd, each chunk saves its q×N buffers for the backward pass (O(N²) in total, like the
    official block); ``checkpoint=True`` recomputes them in the backward instead (O(N·C) saved).
    """
    n = theta.shape[1]
    if chunk_rows is None or chunk_rows >= n:
        chunk_rows = n
    if not torch.is_grad_enabled():
        # Inference: write each chunk straight into a b×C×N result (no list + cat doubling, and the
        # layout the caller reshapes to b×C×h×w without another copy).
        out = theta.new_empty(theta.shape[0], g.shape[2], n)
        for s in range(0, n, chunk_rows):
            chunk = _attend_rows(theta[:, s:s + chunk_rows], phi, g, key_mask)
            out[:, :, s:s + chunk_rows] = chunk.transpose(1, 2)
        return out.transpose(1, 2)
    parts = []
    for s in range(0, n, chunk_rows):
        rows = theta[:, s:s + chunk_rows]
        if checkpoint:
            parts.append(torch.utils.checkpoint.checkpoint(_attend_rows, rows, phi, g, key_mask,
                                                           use_reentrant=False))
        else:
            parts.append(_attend_rows(rows, phi, g, key_mask))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class PartialNonLocal(nn.Module):
    """Partial nonlocal block (paper Eq. 7–10; official ``NonLocalBlock2D_with_mask_Res``, 'combine' fusion).

    ``forward(x, mask)`` with x b×C×h×w and the full-resolution defect mask b×1×H×W:

    1. ``θ, φ, g`` = 1×1 convs of x; affinity ``θᵢ·φⱼ`` (plain dot product, no scaling).
    2. Softmax over all positions, multiplied by the valid-key mask ``m`` (:func:`valid_key_mask`),
       L1-renormalised per query: Eq. 7, with the official ``max(sum, 1e-12)`` denominator.
    3. ``y = W(attention · g)`` → ``n_res_blocks`` ResnetBlocks (ρ_global).
    4. ``out = m·x + (1 − m)·y``: clean cells keep x exactly, defect cells take the nonlocal result.

    All-masked input (no valid key anywhere): every attention row is zero, so ``y = res(W(0))`` and
    ``out = y`` everywhere (what the official code computes). All-clean input: ``out = x`` exactly; at
    inference the attention is then skipped.

    ``chunk_bytes`` bounds one chunk of logits (default 256 MiB: 256 query rows at N = 512², near full
    matmul throughput, see benchmarks/nonlocal.md); ``dense = True`` computes the N×N matrix in one go
    (the reference used by the tests; memory O(N²)). ``checkpoint = True`` (training on large crops)
    recomputes each chunk in the backward pass instead of keeping its attention rows.
    """

    def __init__(self, channels: int = 512, inter_channels: int = 512, n_res_blocks: int = 3) -> None:
        super().__init__()
        # Definition order = official state-dict order (g, W, theta, phi, res_block).
        self.g = nn.Conv2d(channels, inter_channels, 1)
        self.W = nn.Conv2d(inter_channels, channels, 1)
        self.theta = nn.Conv2d(channels, inter_channels, 1)
        self.phi = nn.Conv2d(channels, inter_channels, 1)
        self.res_block = nn.Sequential(*[ResnetBlock(channels) for _ in range(n_res_blocks)])
        nn.init.zeros_(self.W.weight)  # official init: the nonlocal term starts as res_block(0)
        nn.init.zeros_(self.W.bias)
        self.chunk_bytes = DEFAULT_CHUNK_BYTES
        self.dense = False
        self.checkpoint = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        m = valid_key_mask(_check_mask(x, mask), (h, w))            # b×1×h×w, 1 = clean
        if not torch.is_grad_enabled() and bool((m == 1).all()):
            return x  # m·x + 0·y == x exactly; y cannot change the output
        theta = self.theta(x).flatten(2).transpose(1, 2)            # b×N×C
        phi = self.phi(x).flatten(2)                                # b×C×N
        g = self.g(x).flatten(2).transpose(1, 2)                    # b×N×C
        # under bf16/fp16 autocast on a GPU the logits are half precision but their softmax is float32:
        # budget the chunks as float32 there, or they would hold twice the memory meant (CPU autocast keeps
        # the softmax in bf16: its chunks stay as large as the features' precision allows)
        size = x.element_size() if x.device.type == "cpu" else max(x.element_size(), 4)
        rows = None if self.dense else attention_chunk_rows(h * w, b, size, self.chunk_bytes)
        y = partial_attention(theta, phi, g, m.flatten(1), rows, checkpoint=self.checkpoint)
        del theta, phi, g  # three b×C×N maps: free them before the ResnetBlocks run
        y = y.transpose(1, 2).reshape(b, -1, h, w)
        y = self.res_block(self.W(y))
        return m * x + (1 - m) * y


class ScratchMapping(nn.Module):
    """Official ``Mapping_Model_with_mask`` (51,344,704 parameters at the default size).

    ``before_NL`` (4 convs up to ``width``) → :class:`PartialNonLocal` (``NL``, with ``nl_res_blocks``
    ResnetBlocks) → ``after_NL`` (``n_blocks`` ResnetBlocks, 4 convs back to ``latent_channels``).
    ``forward(z, mask) -> z'``; ``mask`` is the full-resolution b×1×H×W defect mask (1 = defect).
    """

    ARCH_NAME = "mapping_scratch"

    def __init__(self, *, latent_channels: int = 64, width: int = 512, inter_channels: int = 512,
                 n_blocks: int = 6, nl_res_blocks: int = 3) -> None:
        super().__init__()
        self.config = {"latent_channels": latent_channels, "width": width, "inter_channels": inter_channels,
                       "n_blocks": n_blocks, "nl_res_blocks": nl_res_blocks}
        ramp = _channel_ramp(latent_channels, width)
        self.before_NL = nn.Sequential(*_down_layers(ramp))
        self.NL = PartialNonLocal(width, inter_channels, nl_res_blocks)
        self.after_NL = nn.Sequential(*[ResnetBlock(width) for _ in range(n_blocks)], *_up_layers(ramp))

    @classmethod
    def config_from_state_dict(cls, sd: dict[str, torch.Tensor]) -> dict:
        first = require_key(sd, "before_NL.0.weight", cls.ARCH_NAME)
        g = require_key(sd, "NL.g.weight", cls.ARCH_NAME)
        return {"latent_channels": int(first.shape[1]), "width": int(g.shape[1]),
                "inter_channels": int(g.shape[0]), "n_blocks": _count_res(sd, "after_NL."),
                "nl_res_blocks": _count_res(sd, "NL.res_block.")}

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.after_NL(self.NL(self.before_NL(z), mask))


# ------------------------------------------------------------------------------------------ patch attention
def latent_defect_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Patch-attention latent mask: ``bilinear(M) > 0`` → 1 (1 = defect), no nearest term."""
    return (F.interpolate(mask, size=size, mode="bilinear", align_corners=False) > 0).to(mask.dtype)


def _best_keys(queries: torch.Tensor, keys: torch.Tensor, chunk_bytes: int) -> torch.Tensor:
    """Index of the most cosine-similar key column for each query column (first index on ties).

    ``queries`` D×nq and ``keys`` D×nk, already L2-normalised; chunks of queries bound the nq×nk matrix.
    (Softmax before argmax, as the official code does, is monotone and cannot change the winner.)
    """
    rows = attention_chunk_rows(keys.shape[1], 1, keys.element_size(), chunk_bytes)
    out = [torch.argmax(queries[:, s:s + rows].T @ keys, dim=1) for s in range(0, queries.shape[1], rows)]
    return torch.cat(out)


class PatchAttention(nn.Module):
    """Official ``Patch_Attention_4``: hard patch copy at one patch size, then a 3×3 fusion conv.

    ``forward(z, mask)`` (inference form, official ``inference_forward``):
    ``x = res_block(z)``; latent mask ``L`` = :func:`latent_defect_mask`; non-overlapping p×p patches of x
    (row-major); a patch with ``mean(L) > query_threshold`` (0.6) is a query, every other full patch a key;
    each query is replaced by the raw x-patch of its most cosine-similar key. The composed map keeps
    ZEROS where no full patch fits (h or w not a multiple of p) — unless there is no query at all, in
    which case it is x itself. ``out = F_Combine(cat[z, composed, L])`` (2C+1 → C).
    If every patch is a query (no key to copy from; the official code would fail) composed = x.

    ``training_forward(z, mask)``: the official training path: every patch (clean ones too) is replaced by
    its most similar non-query patch (query keys excluded with −1e9); gradients flow into the copied
    patches; uncovered borders are zero.
    """

    def __init__(self, channels: int = 512, patch_size: int = 8, query_threshold: float = 0.6) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.query_threshold = query_threshold
        self.F_Combine = nn.Conv2d(2 * channels + 1, channels, 3, padding=1)  # defined first: official order
        self.res_block = nn.Sequential(ResnetBlock(channels))
        self.chunk_bytes = DEFAULT_CHUNK_BYTES

    def _patches(self, x: torch.Tensor, lat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.patch_size
        cols = F.unfold(x, p, stride=p)                           # b × C·p² × P
        coverage = F.unfold(lat, p, stride=p).mean(dim=1)         # b × P
        return cols, coverage > self.query_threshold

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        lat = latent_defect_mask(_check_mask(z, mask), (h, w))
        x = self.res_block(z)
        p = self.patch_size
        composed = []
        if h >= p and w >= p:
            cols, is_query = self._patches(x, lat)
        for i in range(x.shape[0]):
            if h < p or w < p or not bool(is_query[i].any()) or bool(is_query[i].all()):
                composed.append(x[i])
                continue
            q_idx = torch.nonzero(is_query[i]).flatten()
            k_idx = torch.nonzero(~is_query[i]).flatten()
            unit = F.normalize(cols[i], dim=0)
            best = _best_keys(unit[:, q_idx], unit[:, k_idx], self.chunk_bytes)
            new_cols = cols[i].clone()
            new_cols[:, q_idx] = cols[i][:, k_idx[best]]
            composed.append(F.fold(new_cols[None], (h, w), p, stride=p)[0])
        return self.F_Combine(torch.cat([z, torch.stack(composed), lat], dim=1))

    def training_forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        p = self.patch_size
        if h < p or w < p:
            raise ValueError(f"latent {h}×{w} is smaller than the {p}×{p} patch")
        lat = latent_defect_mask(_check_mask(z, mask), (h, w))
        x = self.res_block(z)
        cols, is_query = self._patches(x, lat)
        composed = []
        for i in range(x.shape[0]):
            with torch.no_grad():  # the choice of patch is discrete; gradients flow through the copy
                unit = F.normalize(cols[i], dim=0)
                rows = attention_chunk_rows(unit.shape[1], 1, unit.element_size(), self.chunk_bytes)
                best = []
                for s in range(0, unit.shape[1], rows):
                    sim = unit[:, s:s + rows].T @ unit
                    sim[:, is_query[i]] = -1e9
                    best.append(torch.argmax(sim, dim=1))
                best_t = torch.cat(best)
            composed.append(F.fold(cols[i][:, best_t][None], (h, w), p, stride=p)[0])
        return self.F_Combine(torch.cat([z, torch.stack(composed), lat], dim=1))


class PatchAttentionMapping(nn.Module):
    """Official ``Mapping_Model_with_mask_2`` (HR scratch path; 73,904,448 parameters at the default size).

    ``before_NL`` (4 convs + ``n_res`` ResnetBlocks) → PatchAttention(p₁) → ``res_block_1`` → … →
    PatchAttention(p_k) → ``after_NL`` (``n_res`` ResnetBlocks + 4 convs). ``patch_sizes`` default
    ``[8, 4, 2]``; all scales work at the same latent resolution.
    ``forward(z, mask)``: inference form (hard argmax, official ``inference_forward``);
    ``training_forward(z, mask)``: the official training form. ``mask``: full-resolution b×1×H×W.
    """

    ARCH_NAME = "mapping_patch_attention"

    def __init__(self, *, latent_channels: int = 64, width: int = 512, n_res: int = 2,
                 patch_sizes: list[int] | tuple[int, ...] = (8, 4, 2), query_threshold: float = 0.6) -> None:
        super().__init__()
        patch_sizes = [int(p) for p in patch_sizes]
        self.config = {"latent_channels": latent_channels, "width": width, "n_res": n_res,
                       "patch_sizes": patch_sizes, "query_threshold": query_threshold}
        ramp = _channel_ramp(latent_channels, width)
        self.before_NL = nn.Sequential(*_down_layers(ramp), *[ResnetBlock(width) for _ in range(n_res)])
        for k, p in enumerate(patch_sizes, start=1):
            self.add_module(f"NL_scale_{k}", PatchAttention(width, p, query_threshold))
            if k < len(patch_sizes):
                self.add_module(f"res_block_{k}", nn.Sequential(*[ResnetBlock(width) for _ in range(n_res)]))
        self.after_NL = nn.Sequential(*[ResnetBlock(width) for _ in range(n_res)], *_up_layers(ramp))

    @classmethod
    def config_from_state_dict(cls, sd: dict[str, torch.Tensor]) -> dict:
        first = require_key(sd, "before_NL.0.weight", cls.ARCH_NAME)
        width = require_key(sd, "before_NL.9.weight", cls.ARCH_NAME).shape[0]
        n_scales = 0
        while f"NL_scale_{n_scales + 1}.F_Combine.weight" in sd:
            n_scales += 1
        if n_scales == 0:
            raise ValueError(
                f"state dict is not a {cls.ARCH_NAME!r} checkpoint: no NL_scale_1.F_Combine.weight")
        # Patch sizes are not stored in the weights; the official schedule halves from 2**n_scales down to 2.
        return {"latent_channels": int(first.shape[1]), "width": int(width),
                "n_res": _count_res(sd, "before_NL.", 12),
                "patch_sizes": [2 ** (n_scales - k) for k in range(n_scales)], "query_threshold": 0.6}

    def _scales(self) -> list[tuple[PatchAttention, nn.Module | None]]:
        n = len(self.config["patch_sizes"])
        return [(getattr(self, f"NL_scale_{k}"), getattr(self, f"res_block_{k}", None))
                for k in range(1, n + 1)]

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.before_NL(z)
        for attention, res in self._scales():
            x = attention(x, mask)
            if res is not None:
                x = res(x)
        return self.after_NL(x)

    def training_forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.before_NL(z)
        for attention, res in self._scales():
            x = attention.training_forward(x, mask)
            if res is not None:
                x = res(x)
        return self.after_NL(x)

