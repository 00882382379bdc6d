"""The PyTorch reference nets of the benchmark: our ``resnet18`` (d2l's) and
``cifar_resnet20_v1`` layer for layer, so that images/s compare frameworks,
not architectures.

The one place outside ``gluon_resnet`` that defines layers, because it is
PyTorch code.  torchvision's ``resnet18`` is not d2l's: it has no conv
biases, 3 input channels and 1000 classes.  ``run`` checks that each net
here has exactly the trainable parameters of ours (``count_parameters``;
PyTorch keeps BatchNorm running statistics in buffers, not parameters):
11,178,378 for ``resnet18`` and 269,434 for ``cifar_resnet20_v1``, both
with 1 input channel and 10 classes.

``x : (N, 1, H, W) -> (N, 10)``.
"""
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ['Residual', 'd2l_resnet18', 'BasicBlockA', 'cifar_resnet20', 'torch_net',
           'count_parameters']


# Blocks

class Residual(nn.Module):
    """d2l's block (its PyTorch version with the input channels given):
    conv3x3-BN-ReLU-conv3x3-BN plus ``x`` or a strided 1x1 conv of ``x``, then
    ReLU.  Convs keep their biases, as in the book and in ``gluon_resnet.Residual``."""

    def __init__(self, in_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, num_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, 3, padding=1)
        self.conv3 = (nn.Conv2d(in_channels, num_channels, 1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


class BasicBlockA(nn.Module):
    """He et al.'s CIFAR block, v1, option A: two bias-free 3x3 convs; the
    shortcut keeps every ``stride``-th pixel and appends zero channels (as
    ``gluon_resnet.ZeroPadShortcut``: the zeros after the input's channels)."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.stride, self.extra = stride, channels - in_channels

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + shortcut)


# Nets

def d2l_resnet18(in_channels=1, num_classes=10):
    """d2l's ResNet-18 (section 8.6): 7x7 stem with bias, BN, ReLU, max pool,
    four stages of two ``Residual`` blocks, global average pool, dense."""
    def resnet_block(in_channels, num_channels, num_residuals, first_block=False):
        return [Residual(in_channels if i == 0 else num_channels, num_channels,
                         use_1x1conv=i == 0 and not first_block,
                         strides=2 if i == 0 and not first_block else 1)
                for i in range(num_residuals)]

    return nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        *resnet_block(64, 64, 2, first_block=True), *resnet_block(64, 128, 2),
        *resnet_block(128, 256, 2), *resnet_block(256, 512, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))


def cifar_resnet20(in_channels=1, num_classes=10):
    """He et al.'s CIFAR ResNet-20, v1, option A shortcuts: a 3x3 stem conv
    of 16, three stages of three ``BasicBlockA`` 16/32/64 wide, pool, dense."""
    layers, in_width = [], 16
    for i, width in enumerate((16, 32, 64)):
        for j in range(3):
            layers.append(BasicBlockA(in_width, width, 2 if i and not j else 1))
            in_width = width
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


# Constructor

_NETS = {'resnet18': d2l_resnet18, 'cifar_resnet20_v1': cifar_resnet20}


def torch_net(name, in_channels=1, num_classes=10):
    """The PyTorch twin of the ``gluon_resnet`` model ``name``."""
    if name not in _NETS:
        raise ValueError(f'no PyTorch twin of {name!r}: expected one of {", ".join(_NETS)}')
    return _NETS[name](in_channels, num_classes)


def count_parameters(net):
    """Trainable parameters, as ``gluon_resnet.count_parameters`` counts them."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
