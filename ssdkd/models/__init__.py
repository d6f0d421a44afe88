"""Classifiers of the papers (CIFAR ResNet, WRN, VGG, LeNet-5) and small CNNs for 8×8 /
28×28 data.

All models but the plain LeNet-5 variants (``lenet5``, ``lenet5_half``: the MNIST
networks of DAFL and DFAD, for the methods without a BN-statistics loss) contain
BatchNorm layers (the BN-statistics loss needs them); all take images
normalised as ``(x − mean) / std`` with the training data's per-channel mean and std,
and return logits ``(B, num_classes)``. Build one by name with :func:`create_model`.
"""

from ssdkd.models.lenet import LeNet5, lenet5, lenet5_bn, lenet5_half, lenet5_half_bn
from ssdkd.models.registry import MODELS, create_model
from ssdkd.models.resnet import CifarResNet, resnet18, resnet34
from ssdkd.models.small import SmallCNN, small_cnn, tiny_cnn
from ssdkd.models.vgg import VGG, vgg11_bn
from ssdkd.models.wrn import WideResNet, wrn16_1, wrn16_2, wrn40_1, wrn40_2

__all__ = [
    "MODELS",
    "VGG",
    "CifarResNet",
    "LeNet5",
    "SmallCNN",
    "WideResNet",
    "create_model",
    "lenet5",
    "lenet5_bn",
    "lenet5_half",
    "lenet5_half_bn",
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
