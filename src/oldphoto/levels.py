"""Restore the global levels (per-channel offset and gain) that the global-restoration networks cannot see.

The VAE encoder starts with reflect padding, a convolution and instance normalisation, so its latent is
invariant to ``x -> a·x + b`` (one gain ``a > 0`` for the image, one offset per channel): every
convolution output shifts and scales uniformly and the normalisation removes it.  Whatever the decoder
renders therefore has arbitrary global levels.  The official code hides this with a per-image min–max
stretch of the output (``save_image(normalize=True)``).  We instead fit the output's levels to the
photo's own: a per-image, per-channel least-squares affine map ``out -> gain·out + offset`` onto the
input, over the pixels that are not defects.  Training uses the same fit (onto the network's input), so
that the losses measure what the networks can represent and inference matches training.
"""

from __future__ import annotations

import torch

# A gain outside this range means the output and the input are unrelated in that channel (e.g. a flat
# patch); clamping keeps the fit from inverting or blowing up the output.
MIN_GAIN = 0.05
MAX_GAIN = 20.0


def match_levels(output: torch.Tensor, reference: torch.Tensor, exclude: torch.Tensor | None = None,
                 eps: float = 1e-6) -> torch.Tensor:
    """``output`` with per-sample, per-channel gain and offset fitted (least squares) to ``reference``.

    Args:
        output: ``N×C×H×W`` network output.
        reference: ``N×C×H×W`` (or ``N×1×H×W``, broadcast) image whose levels the output should take.
        exclude: optional ``N×1×H×W`` mask, 1 where the reference is not to be trusted (defects).
    Differentiable, so training can put it inside its losses.
    """
    if reference.shape[1] == 1 and output.shape[1] != 1:
        reference = reference.expand(-1, output.shape[1], -1, -1)
    if reference.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"output {tuple(output.shape)} and reference {tuple(reference.shape)} "
                         "differ in size")
    if exclude is None:
        weight = torch.ones_like(output[:, :1])
    else:
        weight = 1.0 - exclude.to(output.dtype).clamp(0, 1)
        # A photo that is all defect gives no evidence: fall back to every pixel.
        weight = torch.where(weight.sum((2, 3), keepdim=True) < 1, torch.ones_like(weight), weight)
    total = weight.sum((2, 3), keepdim=True)
    out_mean = (output * weight).sum((2, 3), keepdim=True) / total
    ref_mean = (reference * weight).sum((2, 3), keepdim=True) / total
    out_c = output - out_mean
    cov = (out_c * (reference - ref_mean) * weight).sum((2, 3), keepdim=True) / total
    var = (out_c * out_c * weight).sum((2, 3), keepdim=True) / total
    gain = (cov / (var + eps)).clamp(MIN_GAIN, MAX_GAIN)
    return gain * out_c + ref_mean
