"""Losses of data-free distillation: per-sample functions and thin ``nn.Module`` twins.

Each function is the truth and returns per-sample values by default
(``reduction="none"`` → ``(B,)``); ``reduction`` always means "over the batch". Per-sample
weights (SSD-KD's φ, prioritized replay's importance weights) meet a loss in one place,
:func:`weighted_mean`.

========================================  =============================================
quantity                                  function (module)
========================================  =============================================
KL(p_t^T ‖ p_s^T)·T²                      :func:`kd_kl_div` (:class:`KDLoss`)
Σ_l ‖μ_l − rm_l‖₂ + ‖σ²_l − rv_l‖₂        :func:`bn_stat_loss` (:class:`BNStatLoss`),
                                          momentum form :class:`BNStatMomentum`
−𝟙[agree]·KL(p_t ‖ p_s)                   :func:`adversarial_kl` (:class:`AdversarialKLLoss`)
1 − JS(p_s, p_t)                          :func:`js_competition` (:class:`JSCompetitionLoss`)
mean_c |s_c − t_c|                        :func:`logit_l1` (:class:`LogitL1Loss`)
Σ_c p̄_c log p̄_c (batch)                 :func:`information_entropy`
                                          (:class:`InformationEntropyLoss`)
−mean_j |f_j|                             :func:`activation_loss` (:class:`ActivationLoss`)
Σ_l mean (a_S − a_T)²                     :func:`attention_transfer`
                                          (:class:`AttentionTransferLoss`)
−log e^{s⁺/τ} / Σ e^{s/τ} (InfoNCE)       :func:`info_nce` (:class:`InfoNCELoss`)
total variation (L1/L2), ‖x‖₂             :func:`total_variation`, :func:`image_l2`
φ = diversity × difficulty                :func:`diversity_difficulty_weights`
                                          (:class:`DiversityDifficultyModulator`)
(1/B) Σ_i v_i Π_j w_ij                    :func:`weighted_mean`
========================================  =============================================

Examples:
    >>> import torch
    >>> from ssdkd.losses import diversity_difficulty_weights, kd_kl_div, weighted_mean
    >>> student, teacher = torch.zeros(2, 3), torch.tensor([[4.0, 0, 0], [0, 0, 4.0]])
    >>> phi = diversity_difficulty_weights(teacher, torch.tensor([5, 0, 1]))
    >>> loss = weighted_mean(kd_kl_div(student, teacher), phi)
    >>> loss.shape
    torch.Size([])
"""

from __future__ import annotations

from ssdkd.losses.adversarial import (
    AdversarialKLLoss,
    JSCompetitionLoss,
    LogitL1Loss,
    adversarial_kl,
    js_competition,
    logit_l1,
)
from ssdkd.losses.bn import BNStatLoss, BNStatMomentum, bn_stat_loss
from ssdkd.losses.contrastive import InfoNCELoss, info_nce
from ssdkd.losses.generative import (
    ActivationLoss,
    AttentionTransferLoss,
    InformationEntropyLoss,
    activation_loss,
    attention_map,
    attention_transfer,
    information_entropy,
)
from ssdkd.losses.kd import KDLoss, kd_kl_div
from ssdkd.losses.modulation import DiversityDifficultyModulator, diversity_difficulty_weights
from ssdkd.losses.priors import ImageL2Loss, TotalVariationLoss, image_l2, total_variation
from ssdkd.losses.reduction import weighted_mean

__all__ = [
    "ActivationLoss",
    "AdversarialKLLoss",
    "AttentionTransferLoss",
    "BNStatLoss",
    "BNStatMomentum",
    "DiversityDifficultyModulator",
    "ImageL2Loss",
    "InfoNCELoss",
    "InformationEntropyLoss",
    "JSCompetitionLoss",
    "KDLoss",
    "LogitL1Loss",
    "TotalVariationLoss",
    "activation_loss",
    "adversarial_kl",
    "attention_map",
    "attention_transfer",
    "bn_stat_loss",
    "diversity_difficulty_weights",
    "image_l2",
    "info_nce",
    "information_entropy",
    "js_competition",
    "kd_kl_div",
    "logit_l1",
    "total_variation",
    "weighted_mean",
]
