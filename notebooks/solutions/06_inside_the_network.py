"""Answers to the exercises of notebook 06: what training adjusts, counted by hand."""


def cifar_resnet20_parameters(in_channels=1, num_classes=10):
    """Trainable parameters of ``cifar_resnet20_v1``: a 3x3 stem conv, three stages
    of three basic blocks (16, 32, 64 channels), option A shortcuts (no
    parameters), a dense layer.  The convs have no bias (a BatchNorm follows
    each); a BatchNorm learns a scale and a shift per channel."""
    count = 16 * in_channels * 9 + 2 * 16  # stem conv, BatchNorm
    c_in = 16
    for c in (16, 32, 64):
        for _ in range(3):
            count += c_in * c * 9 + c * c * 9 + 2 * 2 * c
            c_in = c
    return count + 64 * num_classes + num_classes
