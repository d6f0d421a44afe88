"""Reference methods composed from the components, and the one table that declares them.

Each method is a module holding a frozen config dataclass (published defaults), its
presets, a class with two steps —
:meth:`~ssdkd.methods.base.DistillationMethod.synthesize` and
:meth:`~ssdkd.methods.base.DistillationMethod.distill_step`; the run engine owns the loop —
and a :class:`~ssdkd.methods.base.MethodSpec`. :data:`METHODS` and :data:`PRESETS` derive
from :data:`~ssdkd.methods.registry.REGISTRY`.
"""

from __future__ import annotations

from ssdkd.methods.base import DistillationMethod, MethodSpec, PoolMethod, RoundPlan
from ssdkd.methods.cmi import CMI, CMI_FASHION_MNIST, CMI_PAPER, CMIConfig
from ssdkd.methods.config import (
    DistillationFields,
    MetaGeneratorFields,
    MethodConfig,
    apply_overrides,
    config_to_dict,
)
from ssdkd.methods.dafl import DAFL, DAFL_FASHION_MNIST, DAFL_MNIST, DAFL_PAPER, DAFLConfig
from ssdkd.methods.deepinversion import (
    DEEPINVERSION_DIGITS,
    DEEPINVERSION_FASHION_MNIST,
    DEEPINVERSION_PAPER,
    DeepInversion,
    DeepInversionConfig,
)
from ssdkd.methods.dfad import DFAD, DFAD_FASHION_MNIST, DFAD_MNIST, DFAD_PAPER, DFADConfig
from ssdkd.methods.dfq import DFQ, DFQ_FASHION_MNIST, DFQ_PAPER, DFQConfig
from ssdkd.methods.fast_dfkd import (
    FAST2,
    FAST2_DIGITS,
    FAST2_FASHION_MNIST,
    FAST5,
    FAST5_DIGITS,
    FAST5_FASHION_MNIST,
    FAST10,
    FastDFKD,
    FastDFKDConfig,
)
from ssdkd.methods.generator_family import GeneratorFamily, GeneratorFamilyFields
from ssdkd.methods.nayer import (
    NAYER,
    NAYER_100,
    NAYER_200,
    NAYER_300,
    NAYER_FASHION_MNIST,
    NAYERConfig,
    NoisyEmbeddingGenerator,
    label_embeddings,
)
from ssdkd.methods.noise import NoiseControl, NoiseControlConfig, noise_control_for
from ssdkd.methods.precision import PRECISIONS, NonFiniteLossError, Precision
from ssdkd.methods.priority_set import PrioritySet, PrioritySetFields, priority_of
from ssdkd.methods.real_data import RealData, RealDataConfig, real_data_for
from ssdkd.methods.registry import (
    METHODS,
    PRESETS,
    REGISTRY,
    check_config_for,
    config_from_dict,
    method_spec,
    spec_of_config,
)
from ssdkd.methods.ssd_kd import (
    SSDKD,
    SSDKD_DIGITS,
    SSDKD_FASHION_MNIST,
    SSDKD_PAPER,
    SSDKDConfig,
)
from ssdkd.methods.student import StudentLoss, StudentStep, StudentStepResult
from ssdkd.methods.zskt import ZSKT, ZSKT_FASHION_MNIST, ZSKT_PAPER, ZSKTConfig

__all__ = [
    "CMI",
    "CMI_FASHION_MNIST",
    "CMI_PAPER",
    "DAFL",
    "DAFL_FASHION_MNIST",
    "DAFL_MNIST",
    "DAFL_PAPER",
    "DEEPINVERSION_DIGITS",
    "DEEPINVERSION_FASHION_MNIST",
    "DEEPINVERSION_PAPER",
    "DFAD",
    "DFAD_FASHION_MNIST",
    "DFAD_MNIST",
    "DFAD_PAPER",
    "DFQ",
    "DFQ_FASHION_MNIST",
    "DFQ_PAPER",
    "FAST2",
    "FAST2_DIGITS",
    "FAST2_FASHION_MNIST",
    "FAST5",
    "FAST5_DIGITS",
    "FAST5_FASHION_MNIST",
    "FAST10",
    "METHODS",
    "NAYER",
    "NAYER_100",
    "NAYER_200",
    "NAYER_300",
    "NAYER_FASHION_MNIST",
    "PRECISIONS",
    "PRESETS",
    "REGISTRY",
    "SSDKD",
    "SSDKD_DIGITS",
    "SSDKD_FASHION_MNIST",
    "SSDKD_PAPER",
    "ZSKT",
    "ZSKT_FASHION_MNIST",
    "ZSKT_PAPER",
    "CMIConfig",
    "DAFLConfig",
    "DFADConfig",
    "DFQConfig",
    "DeepInversion",
    "DeepInversionConfig",
    "DistillationFields",
    "DistillationMethod",
    "FastDFKD",
    "FastDFKDConfig",
    "GeneratorFamily",
    "GeneratorFamilyFields",
    "MetaGeneratorFields",
    "MethodConfig",
    "MethodSpec",
    "NAYERConfig",
    "NoiseControl",
    "NoiseControlConfig",
    "NoisyEmbeddingGenerator",
    "NonFiniteLossError",
    "PoolMethod",
    "Precision",
    "PrioritySet",
    "PrioritySetFields",
    "RealData",
    "RealDataConfig",
    "RoundPlan",
    "SSDKDConfig",
    "StudentLoss",
    "StudentStep",
    "StudentStepResult",
    "ZSKTConfig",
    "apply_overrides",
    "check_config_for",
    "config_from_dict",
    "config_to_dict",
    "label_embeddings",
    "method_spec",
    "noise_control_for",
    "priority_of",
    "real_data_for",
    "spec_of_config",
]
