"""Residual blocks: post-activation (He et al. 2015) and pre-activation (He et al. 2016).

Every block computes a residual branch F(x) and, unless `residual` is False (the plain twin),
adds the shortcut. The norm arrives as a factory, so one block serves every norm choice.
"""

from __future__ import annotations

import torch
from torch import nn

from reslab.models.layers import Norm, conv1x1, conv3x3


class BasicBlock(nn.Module):
    """3x3 -> 3x3, post-activation: relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))."""

    expansion = 1
    preact = False

    def __init__(self, in_planes, planes, stride, shortcut, norm: Norm, residual=True):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride, bias=norm.conv_bias)
        self.bn1 = norm.layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, bias=norm.conv_bias)
        self.bn2 = norm.layer(planes)
        self.downsample = shortcut
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def last_layer(self) -> nn.Module:
        # Without a norm (norm="none") the branch ends on the conv, so that one is zeroed.
        return self.bn2 if hasattr(self.bn2, "weight") else self.conv2


class ReluBNBasicBlock(BasicBlock):
    """BasicBlock with the first norm after its ReLU (conv-ReLU-norm): the placement that the BN
    paper argued against (Ioffe & Szegedy 2015, Sec. 3.2), kept to measure it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.relu(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 with expansion 4; the stride sits on the 3x3 as in torchvision
    ("ResNet v1.5"), which is about 0.5% top-1 more accurate on ImageNet than striding the 1x1."""

    expansion = 4
    preact = False

    def __init__(self, in_planes, planes, stride, shortcut, norm: Norm, residual=True):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes, bias=norm.conv_bias)
        self.bn1 = norm.layer(planes)
        self.conv2 = conv3x3(planes, planes, stride, bias=norm.conv_bias)
        self.bn2 = norm.layer(planes)
        self.conv3 = conv1x1(planes, out_planes, bias=norm.conv_bias)
        self.bn3 = norm.layer(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def last_layer(self) -> nn.Module:
        # Without a norm (norm="none") the branch ends on the conv, so that one is zeroed.
        return self.bn3 if hasattr(self.bn3, "weight") else self.conv3


class PreActBasicBlock(nn.Module):
    """norm-ReLU-conv twice, and nothing after the addition: the identity path stays clean
    from block to block (He et al. 2016, "Identity Mappings in Deep Residual Networks")."""

    expansion = 1
    preact = True

    def __init__(self, in_planes, planes, stride, shortcut, norm: Norm, residual=True):
        super().__init__()
        self.bn1 = norm.layer(in_planes)
        self.conv1 = conv3x3(in_planes, planes, stride, bias=norm.conv_bias)
        self.bn2 = norm.layer(planes)
        self.conv2 = conv3x3(planes, planes, bias=norm.conv_bias)
        self.relu = nn.ReLU()
        self.downsample = shortcut
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        # A projection sees the pre-activated input, as in the paper's reference code.
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + identity if self.residual else out

    def last_layer(self) -> nn.Module:
        return self.conv2


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (He et al. 2016): norm-ReLU-conv for 1x1, 3x3, 1x1."""

    expansion = 4
    preact = True

    def __init__(self, in_planes, planes, stride, shortcut, norm: Norm, residual=True):
        super().__init__()
        self.bn1 = norm.layer(in_planes)
        self.conv1 = conv1x1(in_planes, planes, bias=norm.conv_bias)
        self.bn2 = norm.layer(planes)
        self.conv2 = conv3x3(planes, planes, stride, bias=norm.conv_bias)
        self.bn3 = norm.layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion, bias=norm.conv_bias)
        self.relu = nn.ReLU()
        self.downsample = shortcut
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + identity if self.residual else out

    def last_layer(self) -> nn.Module:
        return self.conv3
