"""Learning-rate schedules: the learning rate of every step of a run.

``learning_rate(step, num_steps, lr, schedule, warmup_steps)`` is the rule;
``step_schedule(settings)`` fixes it to a run's settings (``fit``'s), so the
loop, the ``dist_async`` servers and a resumed run all ask one function.
"""
import functools
import math

__all__ = ['SCHEDULES', 'learning_rate', 'step_schedule']

SCHEDULES = ('constant', 'step', 'cosine')


def learning_rate(step, num_steps, lr, schedule='cosine', warmup_steps=0):
    """The learning rate of step ``step`` (from 0) of ``num_steps``.

    ``constant``: ``lr``.  ``step``: ``lr``, then ``lr/10`` from 50% of the
    steps and ``lr/100`` from 75%, as the CIFAR runs of He et al. 2015
    (divided at 32k and 48k of 64k iterations).  ``cosine``: half a cosine from
    ``lr`` down to 0 over the steps after the warmup (Loshchilov and Hutter,
    https://arxiv.org/abs/1608.03983).  Warmup: the first ``warmup_steps``
    steps rise linearly to ``lr``, from ``lr / warmup_steps`` (Goyal et al.,
    https://arxiv.org/abs/1706.02677: large early steps destabilise training).
    """
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if schedule == 'step':
        factor *= 0.1 ** ((step >= 0.5 * num_steps) + (step >= 0.75 * num_steps))
    elif schedule == 'cosine':
        progress = max(0, step - warmup_steps) / max(1, num_steps - warmup_steps)
        factor *= 0.5 * (1 + math.cos(math.pi * progress))
    elif schedule != 'constant':
        raise ValueError(f'schedule must be one of {", ".join(map(repr, SCHEDULES))}, '
                         f'got {schedule!r}')
    return lr * factor


def step_schedule(settings):
    """``lr_of_step(step)`` for a run's ``settings`` (``num_epochs``,
    ``num_batches``, ``lr``, ``schedule``, ``warmup_epochs``)."""
    num_batches = settings['num_batches']
    return functools.partial(learning_rate, num_steps=settings['num_epochs'] * num_batches,
                             lr=settings['lr'], schedule=settings['schedule'],
                             warmup_steps=settings['warmup_epochs'] * num_batches)
