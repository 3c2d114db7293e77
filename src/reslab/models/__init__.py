"""Residual networks: blocks, the generic ResNet, and the registry of named models."""

from reslab.models import zoo as _zoo  # noqa: F401  (fills the registry)
from reslab.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from reslab.models.layers import NORMS, SHORTCUTS, Norm
from reslab.models.registry import (
    ModelSpec,
    count_params,
    create_model,
    get_spec,
    list_models,
    model_info,
    register,
)
from reslab.models.resnet import ResNet

__all__ = [
    "NORMS",
    "SHORTCUTS",
    "BasicBlock",
    "Bottleneck",
    "ModelSpec",
    "Norm",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "count_params",
    "create_model",
    "get_spec",
    "list_models",
    "model_info",
    "register",
]
