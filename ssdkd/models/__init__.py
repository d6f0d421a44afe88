"""Classifiers of the papers (CIFAR ResNet, WRN, VGG) and small CNNs for 8×8 / 28×28 data.

All models contain BatchNorm layers (the BN-statistics loss needs them), take images
normalised as ``(x − mean) / std`` with the training data's per-channel mean and std,
and return logits ``(B, num_classes)``. Build one by name with :func:`create_model`.
"""

from ssdkd.models.registry import MODELS, create_model
from ssdkd.models.resnet import CifarResNet, resnet18, resnet34
from ssdkd.models.small import SmallCNN, small_cnn, tiny_cnn
from ssdkd.models.vgg import VGG, vgg11_bn
from ssdkd.models.wrn import WideResNet, wrn16_1, wrn16_2, wrn40_1, wrn40_2

__all__ = [
    "MODELS",
    "VGG",
    "CifarResNet",
    "SmallCNN",
    "WideResNet",
    "create_model",
    "resnet18",
    "resnet34",
    "small_cnn",
    "tiny_cnn",
    "vgg11_bn",
    "wrn16_1",
    "wrn16_2",
    "wrn40_1",
    "wrn40_2",
]
