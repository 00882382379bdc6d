"""How fast gluon_resnet trains and infers, next to a bare MXNet loop, d2l's
``train_ch6`` and PyTorch, on this machine.

    python -m benchmarks.run                    # every setting and variant
    python -m benchmarks.run --quick            # 28x28 only, 3 steps each: under 2 minutes
    python -m benchmarks.run --out results.json # the table, and everything as JSON
    python -m benchmarks.run --time-to-accuracy # seconds to 92.4% and 93.0% on Fashion-MNIST
    python -m benchmarks.run --time-to-accuracy --recipe none -- --data digits --epochs 2

Settings (1 input channel, 10 classes, as Fashion-MNIST): ``resnet18-28``
(d2l's ResNet-18, 28x28, batch 256), ``resnet18-96`` (96x96, batch 128, the
resolution of d2l's recipe) and ``resnet20-28`` (``cifar_resnet20_v1``,
28x28, batch 128).  Variants, each in a process of its own (MXNet reads
its thread settings when it starts), with ``OMP_NUM_THREADS`` = the usable
cores except where said:

  training   mxnet-bare      the net hybridized with static_alloc and static_shape, SGD
             fit             gluon_resnet.fit on the synthetic set with the training transforms
             d2l-default     d2l.train_ch6 on d2l's ResNet-18 (imperative nn.Block), as a d2l
                             student runs it: OMP_NUM_THREADS unset, gluon_resnet not imported
             d2l-threads     the same with OMP_NUM_THREADS = cores
             torch-eager, torch-channels-last, torch-compile
                             PyTorch on the same architecture (benchmarks/torch_nets.py)
  inference  mxnet-infer     hybridized with static_alloc and static_shape
             mxnet-onednn    net.optimize_for(X, backend='MKLDNN'): oneDNN's fused operators
             torch-infer     PyTorch eager, channels-last, inference_mode
  data       loader          load_data's training iterator alone

Timing: W warm-up steps, a sync (``mx.nd.waitall()``), S timed steps, a
sync.  ``fit`` reports its own images/s of the second of two S-step epochs.
``train_ch6`` trains one epoch of W + S batches and is timed from the moment
it asks for batch W (it has read back every earlier loss then) to the end.
Every row also gives the peak resident memory of its process (ru_maxrss) and
the GFLOP/s achieved, as a fraction of the float32 matrix-multiply peak this
run measures (numpy and ``mx.nd.dot``, the best).  The key columns are the
images/s over those of the best PyTorch variant of the same kind, and over
d2l as a student runs it.

With a GPU that MXNet can use, the same variants run on it, plus float16 AMP
ones (mxnet-bare-amp, fit-amp, torch-amp); otherwise the run says why and
measures the CPU.  PyTorch is the optional extra ``pip install -e '.[bench]'``;
without it its rows say so.

--time-to-accuracy runs ``python -m gluon_resnet.train --recipe NAME`` (add
training flags after ``--``; ``--recipe none`` passes none), records the wall
time from its start at which each epoch's test accuracy is known, reports
when 92.4% and 93.0% were first reached and the final accuracy, and
projects the time of d2l's recipe (10 epochs at 96x96) from train_ch6's
training and test speeds measured in the same run at 96x96, batch 128.
"""
import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import accuracy, measure
from .measure import SETTINGS, VARIANTS_BY_NAME

ENVIRONMENT = dict(os.environ)  # as given, before anything here imports gluon_resnet
ROOT = Path(__file__).resolve().parent.parent
THREADS = len(os.sched_getaffinity(0))  # the cores this process may use
QUICK_SETTINGS = ('resnet18-28', 'resnet20-28')
TORCH_MISSING = "PyTorch not installed: pip install -e '.[bench]'"
TIMEOUT = 1200  # seconds one variant may take, torch.compile's compiling included


# Arguments

def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.run', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument('--quick', action='store_true',
                        help='28x28 settings only, 2 warm-up and 3 timed steps, no '
                             'torch.compile (it compiles for minutes on 2 cores)')
    parser.add_argument('--settings', type=settings_list, metavar='NAMES',
                        help=f'comma list of {", ".join(SETTINGS)} (default: all; with '
                             f'--quick {", ".join(QUICK_SETTINGS)})')
    parser.add_argument('--steps', type=positive_int, metavar='S',
                        help='timed steps of each variant (default: 20; --quick 3; '
                             '--time-to-accuracy 10)')
    parser.add_argument('--out', metavar='FILE', help='also write the results as JSON')
    parser.add_argument('--time-to-accuracy', action='store_true',
                        help='time a training recipe to 92.4%% and 93.0%% test accuracy '
                             'instead (see above)')
    parser.add_argument('--recipe', default='fmnist-fast', metavar='NAME',
                        help='with --time-to-accuracy: the --recipe of gluon_resnet.train '
                             '(default: fmnist-fast; none: no --recipe)')
    parser.add_argument('train_args', nargs='*', metavar='-- TRAIN_ARGS',
                        help='with --time-to-accuracy: more flags for gluon_resnet.train')
    # A child process measures one variant and prints one JSON line.
    parser.add_argument('--variant', help=argparse.SUPPRESS)
    parser.add_argument('--setting', choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument('--warmup', type=positive_int, help=argparse.SUPPRESS)
    parser.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_args and not args.time_to_accuracy:
        parser.error(f'unexpected arguments {" ".join(args.train_args)}: only '
                     '--time-to-accuracy passes arguments on')
    return args


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return int(text)


def settings_list(text):
    names = [name.strip() for name in text.split(',')]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f'unknown setting {unknown[0] if unknown else text!r}: '
                                         f'expected a comma list of {", ".join(SETTINGS)}')
    return names


# One variant (the child process)

def measure_one(args):
    if args.variant == 'peak':
        result = measure.peak_gflops(2048 if args.quick else 4096, args.device)
    else:
        variant = VARIANTS_BY_NAME[args.variant]
        result = variant(SETTINGS[args.setting], args.warmup, args.steps, args.device)
    result['max_rss_mb'] = measure.max_rss_mb()
    print('RESULT', json.dumps(result), flush=True)


def run_child(variant, setting, args, device, timeout=TIMEOUT):
    """Measure ``variant`` at ``setting`` in a new process; its result dict,
    or ``{'error': ...}`` with the last line it wrote on stderr."""
    env = dict(ENVIRONMENT, MPLBACKEND='Agg',
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                         ENVIRONMENT.get('PYTHONPATH')])))
    env.pop('OMP_NUM_THREADS', None)
    if not getattr(VARIANTS_BY_NAME.get(variant), 'default_threads', False):
        env['OMP_NUM_THREADS'] = str(THREADS)
    command = [sys.executable, '-m', 'benchmarks.run', '--variant', variant,
               '--steps', str(args.steps), '--warmup', str(args.warmup), '--device', device]
    command += ['--setting', setting] if setting else []
    command += ['--quick'] if args.quick else []
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    # A session of its own, so that a timeout ends the compile workers of torch.compile too.
    with subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            return dict(error=f'timed out after {timeout} s')
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = dict(process_s=time.perf_counter() - start,
                 process_cpu_s=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    results = [line[len('RESULT '):] for line in stdout.splitlines() if line.startswith('RESULT ')]
    if child.returncode or not results:
        lines = [line for line in stderr.splitlines() if line.strip()]
        return dict(error=f'exit code {child.returncode}: '
                          f'{lines[-1][:300] if lines else "no output"}', **usage)
    return dict(json.loads(results[-1]), **usage)


# The machine

def pick_device():
    """``('gpu', note)`` if MXNet can use GPU 0, else ``('cpu', why not)``."""
    import mxnet as mx
    from gluon_resnet import devices
    try:
        if not devices.num_gpus():
            return 'cpu', 'no GPU: measuring the CPU'
        devices.check_ctx([mx.gpu(0)])
    except ValueError as error:
        return 'cpu', f'{error}; measuring the CPU'
    return 'gpu', 'measuring GPU 0 (float32 and float16 AMP)'


def cpu_model():
    try:
        with open('/proc/cpuinfo') as file:
            for line in file:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions():
    found = {'python': platform.python_version()}
    for name in ('mxnet', 'numpy', 'd2l', 'torch', 'gluon_resnet'):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def model_facts(setting):
    """Trainable parameters and forward MACs per image (``layer_report``) of the setting's net."""
    import gluon_resnet as gr
    net = gr.initialize(gr.get_model(setting.model, num_classes=measure.NUM_CLASSES))
    report = gr.layer_report(net, (1, 1, setting.image_size, setting.image_size))
    return dict(params=report.total_params, macs_per_image=report.total_macs)


# The whole run

def skip_reason(variant, setting, args, torch_installed):
    if variant.models and setting.model not in variant.models:
        return f"not measured: train_ch6 trains d2l's own ResNet-18, not {setting.model}"
    if variant.framework == 'torch' and not torch_installed:
        return TORCH_MISSING
    if variant.name == 'torch-compile' and args.quick:
        return 'skipped with --quick: torch.compile compiles for minutes on 2 cores'
    return None


def measure_all(args, device):
    torch_installed = importlib.util.find_spec('torch') is not None
    peak = run_child('peak', None, args, device)
    rows = []
    for name in args.settings:
        setting = SETTINGS[name]
        facts = model_facts(setting)
        for variant in measure.variants_for(device):
            row = dict(setting=name, model=setting.model, image_size=setting.image_size,
                       batch_size=setting.batch_size, variant=variant.name, kind=variant.kind,
                       framework=variant.framework, what=variant.what, **facts,
                       img_per_s=None, max_rss_mb=None, note='', details={})
            reason = skip_reason(variant, setting, args, torch_installed)
            if reason:
                row['note'] = reason
            else:
                result = run_child(variant.name, name, args, device)
                check_result(result, facts, variant, setting)
                row.update(img_per_s=result.pop('img_per_s', None),
                           max_rss_mb=result.pop('max_rss_mb', None),
                           note=result.pop('error', ''), details=result)
            print(f'{name:12} {variant.name:20} {fmt(row["img_per_s"], "8.0f", "       -")} '
                  f'img/s  {row["note"]}', file=sys.stderr, flush=True)
            rows.append(row)
    add_ratios(rows, peak.get('gflops'))
    return peak, rows


def check_result(result, facts, variant, setting):
    """A PyTorch twin must have exactly our net's trainable parameters, and
    d2l-default must have run without gluon_resnet (which sets the threads)."""
    if 'params' in result and result['params'] != facts['params']:
        raise RuntimeError(f'{variant.name}: the PyTorch {setting.model} has {result["params"]:,} '
                           f'parameters, ours {facts["params"]:,}: not the same architecture')
    if variant.default_threads and (result.get('gluon_resnet_imported')
                                    or result.get('omp_num_threads')):
        raise RuntimeError(f'{variant.name} ran with gluon_resnet imported or OMP_NUM_THREADS '
                           f'set: not MXNet\'s default threads')


def add_ratios(rows, peak_gflops):
    """The key columns: img/s over the best PyTorch variant of the same kind
    and over d2l-default at the same setting; GFLOP/s and the peak fraction."""
    for row in rows:
        same = [r for r in rows if r['setting'] == row['setting'] and r['img_per_s']]
        torch_best = max((r['img_per_s'] for r in same if r['framework'] == 'torch'
                          and r['kind'] == row['kind']), default=None)
        d2l = next((r['img_per_s'] for r in same if r['variant'] == 'd2l-default'), None)
        ips = row['img_per_s']
        row['vs_pytorch'] = ips / torch_best if ips and torch_best and row['kind'] != 'data' \
            else None
        row['vs_d2l'] = ips / d2l if ips and d2l and row['kind'] == 'train' else None
        # training: forward + gradients of activations + gradients of weights = 3 x forward
        flops = {'train': 3 * 2, 'infer': 2}.get(row['kind'])
        row['gflops'] = ips * flops * row['macs_per_image'] / 1e9 if ips and flops else None
        row['peak_fraction'] = row['gflops'] / peak_gflops if row['gflops'] and peak_gflops \
            else None


# Output

def fmt(value, spec, missing='n/a'):
    return missing if value is None else format(value, spec)


def table(result):
    """The results as markdown: what ran where, the table, the conventions."""
    machine = result['machine']
    lines = [
        f'`{result["command"]}`, {result["date"]}',
        '',
        f'Machine: {machine["cpu"]}, {machine["cores"]} cores, {machine["threads"]} threads '
        f'(OMP_NUM_THREADS of every variant but d2l-default); {result["device_note"]}.',
        'Versions: ' + ', '.join(f'{k} {v or "not installed"}'
                                 for k, v in result['versions'].items()) + '.',
        peak_line(result['peak']),
        'Settings: ' + '; '.join(setting_line(result['rows'], name)
                                 for name in dict.fromkeys(r['setting'] for r in result['rows']))
        + '.',
        '',
        '| setting | variant | kind | img/s | vs best PyTorch | vs d2l | GFLOP/s | % of peak '
        '| peak RSS MB | note |',
        '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ]
    for row in result['rows']:
        lines.append(
            f'| {row["setting"]} | {row["variant"]} | {row["kind"]} '
            f'| {fmt(row["img_per_s"], ",.0f", "-")} | {fmt(row["vs_pytorch"], ".2f")} '
            f'| {fmt(row["vs_d2l"], ".2f")} | {fmt(row["gflops"], ".1f", "-")} '
            f'| {fmt(row["peak_fraction"] and 100 * row["peak_fraction"], ".1f", "-")} '
            f'| {fmt(row["max_rss_mb"], ".0f", "-")} | {row_note(row)} |')
    lines += ['', *[f'- {line}' for line in result['conventions']]]
    return '\n'.join(lines)


def peak_line(peak):
    if 'error' in peak:
        return f'Matrix-multiply peak: not measured ({peak["error"]}).'
    return (f'Matrix-multiply peak (float32, {peak["size"]}x{peak["size"]}): '
            f'{peak["gflops"]:.1f} GFLOP/s (numpy {fmt(peak.get("numpy_gflops"), ".1f")}, '
            f'mx.nd.dot {fmt(peak.get("mxnet_gflops"), ".1f")}).')


def setting_line(rows, name):
    row = next(r for r in rows if r['setting'] == name)
    return (f'{name} = {row["model"]}, {row["image_size"]}x{row["image_size"]}, batch '
            f'{row["batch_size"]} ({row["params"]:,} parameters, '
            f'{row["macs_per_image"] / 1e6:.1f} M MACs per image)')


def row_note(row):
    details = row['details']
    notes = [row['note']] if row['note'] else []
    if 'first_step_s' in details and row['variant'] == 'torch-compile':
        notes.append(f'first step (compiling) {details["first_step_s"]:.0f} s')
    if 'fused_ops' in details:
        notes.append(f'{details["fused_ops"]} fused oneDNN ops')
    if 'eval_img_per_s' in details:
        notes.append(f'test pass {details["eval_img_per_s"]:,.0f} img/s')
    return '; '.join(notes).replace('|', '/')


CONVENTIONS = [
    'img/s: steady state, {warmup} warm-up steps then {steps} timed steps between syncs; '
    "fit: its own img/s of the second of two {steps}-step epochs (training steps with the "
    'data, not the test pass); d2l: train_ch6 on in-memory batches, timed from batch {warmup} '
    'to the end of its epoch.',
    'vs best PyTorch: img/s over those of the fastest PyTorch variant of the same kind at the '
    'setting; vs d2l: over d2l-default (train_ch6 as a d2l student runs it). n/a: not measured.',
    'GFLOP/s: forward MACs of layer_report (convs and dense layers) x 2 FLOPs per MAC; '
    'training counts 3 x the forward (forward, gradients of activations, of weights). '
    '% of peak: of the float32 matrix-multiply peak above.',
    'peak RSS: ru_maxrss of the variant\'s own process, framework and data included.',
]


def write_json(result, path):
    with open(path, 'w') as file:
        json.dump(result, file, indent=1)
        file.write('\n')


def header(args, device_note):
    return dict(command=' '.join(['python -m benchmarks.run', *map(shlex.quote, sys.argv[1:])]),
                date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), versions=versions(),
                machine=dict(cpu=cpu_model(), cores=os.cpu_count(), threads=THREADS,
                             platform=platform.platform()),
                device_note=device_note)


def benchmark(args):
    device, device_note = pick_device()
    print(device_note, file=sys.stderr, flush=True)
    result = header(args, device_note)
    result['device'] = device
    result['peak'], result['rows'] = measure_all(args, device)
    result['conventions'] = [c.format(warmup=args.warmup, steps=args.steps) for c in CONVENTIONS]
    print(table(result))
    if args.out:
        write_json(result, args.out)


# --time-to-accuracy

def time_to_accuracy(args):
    device, device_note = pick_device()
    result = header(args, device_note)
    result['recipe'] = args.recipe
    with tempfile.TemporaryDirectory(prefix='benchmark-run-') as folder:
        out_dir = os.path.join(folder, 'run')
        recipe = ['--recipe', args.recipe] if args.recipe != 'none' else []
        command = [sys.executable, '-m', 'gluon_resnet.train', *recipe, *args.train_args]
        result['train_command'] = ' '.join(map(shlex.quote, ['python', *command[1:]]))
        # As a user runs it: the environment as given (train chooses the threads).
        env = dict(ENVIRONMENT, PYTHONUNBUFFERED='1', MPLBACKEND='Agg')
        elapsed, total_s, code = accuracy.train_and_time(command + ['--out', out_dir], env)
        if code:
            sys.exit(f'benchmarks.run: {result["train_command"]} failed with exit code {code} '
                     '(its error is above)')
        result.update(accuracy.summarize(accuracy.read_metrics(out_dir), elapsed, total_s))
    result['d2l'] = {}
    for name in ('d2l-default', 'd2l-threads'):
        print(f'measuring {name} at resnet18-96 ...', file=sys.stderr, flush=True)
        speeds = run_child(name, 'resnet18-96', args, device)
        if 'error' not in speeds:
            speeds['projected_s'] = accuracy.project_d2l(speeds['img_per_s'],
                                                         speeds['eval_img_per_s'])
        result['d2l'][name] = speeds
    print(accuracy_report(result))
    if args.out:
        write_json(result, args.out)


def accuracy_report(result):
    lines = [f'`{result["command"]}`, {result["date"]}; {result["machine"]["cpu"]}, '
             f'{result["machine"]["threads"]} threads; {result["device_note"]}', '',
             f'`{result["train_command"]}`: final test accuracy '
             f'{result["final_test_acc"]:.4f}, {result["total_s"]:.1f} s in all', '',
             '| epoch | seconds from start | test acc |', '| ---: | ---: | ---: |']
    lines += [f'| {e["epoch"]} | {e["elapsed_s"]:.1f} | {e["test_acc"]:.4f} |'
              for e in result['epochs']]
    lines.append('')
    for threshold, seconds in result['reached'].items():
        when = 'never' if seconds is None else f'{seconds:.1f} s'
        lines.append(f'- {float(threshold):.1%} test accuracy first reached: {when}')
    for name, speeds in result['d2l'].items():
        if 'error' in speeds:
            lines.append(f'- d2l\'s recipe, {name}: not measured ({speeds["error"]})')
        else:
            seconds = speeds['projected_s']
            lines.append(f'- d2l\'s recipe, {name} (projected): {seconds:,.0f} s '
                         f'({seconds / 60:.0f} min) = {accuracy.D2L_EPOCHS} x (60,000 images / '
                         f'{speeds["img_per_s"]:.1f} img/s + 10,000 / '
                         f'{speeds["eval_img_per_s"]:.1f} img/s)')
            first = result['reached'].get(f'{accuracy.THRESHOLDS[0]:.3f}')
            if first:
                lines.append(f'  - {accuracy.THRESHOLDS[0]:.1%} in 1/{seconds / first:.1f} of '
                             f'that time (goal: 1/{accuracy.D2L_SPEEDUP_GOAL})')
    lines.append('- Seconds from the start of the training process to the end of each epoch\'s '
                 'test pass. d2l\'s recipe (train_ch6, 10 epochs at 96x96) is projected from '
                 'train_ch6\'s training and test-pass speeds at 96x96, batch 128, measured in '
                 'this run, without data loading or start-up: a lower bound.')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.variant:
        measure_one(args)
        return
    if args.steps is None:
        args.steps = 10 if args.time_to_accuracy else 3 if args.quick else 20
    args.warmup = args.warmup or (2 if args.quick else 3)
    if args.time_to_accuracy:
        time_to_accuracy(args)
        return
    args.settings = args.settings or list(QUICK_SETTINGS if args.quick else SETTINGS)
    benchmark(args)


if __name__ == '__main__':
    main()
