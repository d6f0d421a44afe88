"""Record what a forward pass does: BatchNorm input statistics and module outputs.

Hooks record, losses compute: these context managers attach hooks on entry, remove them on
exit (also when the body raises) and never change the model. Their recordings are read
inside the ``with`` block.

Example — DeepInversion in a few lines: optimise the pixels of a batch so that its
statistics at every BatchNorm layer of a frozen teacher match the running statistics.

    >>> import torch
    >>> from torch import nn
    >>> from ssdkd.hooks import BNStatsHook
    >>> from ssdkd.losses import bn_stat_loss
    >>> teacher = nn.Sequential(
    ...     nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    ...     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4), nn.BatchNorm1d(4),
    ... ).eval()
    >>> with torch.no_grad():  # pretend the teacher's training data had these statistics
    ...     _ = teacher[1].running_mean.fill_(0.3), teacher[1].running_var.fill_(2.0)
    >>> _ = teacher.requires_grad_(False)
    >>> rng = torch.Generator().manual_seed(0)
    >>> images = torch.rand(16, 3, 8, 8, generator=rng).requires_grad_()
    >>> optimizer = torch.optim.Adam([images], lr=0.1)
    >>> history = []
    >>> for step in range(60):
    ...     with BNStatsHook(teacher) as bn:
    ...         logits = teacher(images)
    ...         loss = bn_stat_loss(bn.stats)
    ...     optimizer.zero_grad()
    ...     loss.backward()
    ...     optimizer.step()
    ...     history.append(loss.item())
    >>> history[-1] < 0.5 * history[0]
    True
"""

from __future__ import annotations

from ssdkd.hooks.bn import BNLayerStats, BNStatsHook, batchnorm_layers, has_batchnorm
from ssdkd.hooks.features import FeatureHook

__all__ = ["BNLayerStats", "BNStatsHook", "FeatureHook", "batchnorm_layers", "has_batchnorm"]
