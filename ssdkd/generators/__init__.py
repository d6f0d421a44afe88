"""Image generators, meta-learning steps and differentiable augmentation.

- :class:`DCGANGenerator`: the latent-to-image generator of Fast-DFKD / CMI.
- :class:`PixelGenerator`: DeepInversion's pixels-as-parameters batch.
- :func:`fomaml_accumulate`, :func:`reptile_gradient`, :func:`reinitialize`: the meta
  steps of Fast-DFKD.
- :func:`random_crop`, :func:`random_flip`, :func:`random_roll`, :func:`normalize` and
  the :class:`Augment` / :class:`Normalize` modules: augmentation with an explicit
  :class:`torch.Generator`, differentiable with respect to the images;
  :func:`channel_values` reads per-channel statistics (a bare number is one channel).

Every generator outputs images in [0, 1]; models take ``normalize(images, mean, std)``.
"""

from ssdkd.generators.augment import (
    Augment,
    Normalize,
    channel_values,
    normalize,
    random_crop,
    random_flip,
    random_mixup,
    random_roll,
)
from ssdkd.generators.dcgan import DCGANGenerator
from ssdkd.generators.meta import fomaml_accumulate, reinitialize, reptile_gradient
from ssdkd.generators.pixel import PixelGenerator

__all__ = [
    "Augment",
    "DCGANGenerator",
    "Normalize",
    "PixelGenerator",
    "channel_values",
    "fomaml_accumulate",
    "normalize",
    "random_crop",
    "random_flip",
    "random_mixup",
    "random_roll",
    "reinitialize",
    "reptile_gradient",
]
