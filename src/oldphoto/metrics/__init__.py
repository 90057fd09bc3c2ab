"""Image-quality metrics, the paper's analyses, and the benchmark (``oldphoto evaluate``).

Images are float32 RGB ``H×W×3`` in [0, 1].  Exports are lazy, so importing this package is cheap:

- full reference: ``psnr``, ``ssim``, ``psnr_y``, ``ssim_y`` (``fullref``); ``LPIPS`` (``lpips``),
  ``DISTS`` (``dists``): real ImageNet networks installed by ``oldphoto data perception`` (``perception``)
- no reference: ``niqe`` (``niqe``), ``brisque`` (``brisque``)
- distributions: ``frechet_distance``, ``frechet_from_features``, ``fid_extractor``, ``fid_proxy_extractor``
- paper analyses: ``wasserstein_exact``, ``sliced_wasserstein``, ``gaussian_w2`` (Table 4);
  ``roc_curve``, ``roc_auc``, ``plot_roc`` (Fig. 6); ``identity_distance`` (faces)
- baselines: ``degraded_input``, ``classical_restore``, ``classical_scratch_mask``
"""

from __future__ import annotations

from oldphoto.lazy import lazy_exports

_EXPORTS = {
    "psnr": "fullref", "ssim": "fullref", "psnr_y": "fullref", "ssim_y": "fullref", "rgb_to_luma": "fullref",
    "niqe": "niqe", "brisque": "brisque", "LPIPS": "lpips", "DISTS": "dists",
    "frechet_distance": "fid", "frechet_from_features": "fid", "fid_extractor": "fid",
    "fid_proxy_extractor": "fid",
    "wasserstein_exact": "latent", "sliced_wasserstein": "latent", "gaussian_w2": "latent",
    "roc_curve": "roc", "roc_auc": "roc", "auc": "roc", "plot_roc": "roc", "pixels_from_masks": "roc",
    "identity_distance": "identity", "face_embedding": "identity",
    "degraded_input": "baselines", "classical_restore": "baselines", "classical_scratch_mask": "baselines",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
