"""Answers to the exercises of notebook 03."""
import numpy as np


def my_confusion_matrix(labels, predicted, num_classes):
    """Row i, column j: how many images of class i were predicted as class j."""
    matrix = np.zeros((num_classes, num_classes), dtype=int)
    for true, guess in zip(labels, predicted):
        matrix[int(true), int(guess)] += 1
    return matrix
