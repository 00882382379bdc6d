"""Tests of ``python -m gluon_resnet.train``: outputs, bad input, signals, NaN, resume.

Runs use CIFAR ResNet-20 on the digits at 8x8 or 16x16 pixels: a second an epoch.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gluon_resnet import train
from conftest import WITHOUT_ROOT_OVERRIDE, cli_error, python_m
from gluon_resnet.checkpoint import RunDir
from gluon_resnet.data import load_data
from gluon_resnet.checkpoint import load_checkpoint

SMALL = ['--model', 'cifar_resnet20_v1', '--image-size', '8', '--batch-size', '64']
EPOCH_LINE = re.compile(r'^epoch (\d+)/(\d+)  loss \d+\.\d{3}  train acc [01]\.\d{3}  '
                        r'test acc [01]\.\d{3}  \d+ img/s$')


def cli(*args, **kwargs):
    """Run the CLI in a subprocess (``conftest.python_m``)."""
    return python_m('gluon_resnet.train', *args, **kwargs)


def metrics(run_dir, *keys):
    lines = (run_dir / 'metrics.jsonl').read_text().splitlines()
    return [tuple(json.loads(line)[key] for key in keys) for line in lines]


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    """A finished 2-epoch run: its directory and the completed process."""
    out = tmp_path_factory.mktemp('runs') / 'small'
    return out, cli(*SMALL, '--epochs', '2', '--out', str(out))


def test_run_writes_the_run_directory(finished_run):
    out, result = finished_run
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f'training cifar_resnet20_v1 on digits (1, 8, 8), 1437 training and 360 '
                        f'test images, on [cpu(0)]; run directory {out}')
    assert [EPOCH_LINE.match(line).groups() for line in lines[1:3]] == [('1', '2'), ('2', '2')]
    inodes = {(p.stat().st_ino, p.stat().st_size) for p in out.iterdir()}  # a linked best once
    size_mb = sum(size for _, size in inodes) / 1e6
    assert lines[3] == (f'wrote {out} ({size_mb:.0f} MB): config.json, metrics.jsonl, '
                        'curves.png, last.ckpt, best.ckpt')
    assert result.stderr == 'using 1 CPU thread (from OMP_NUM_THREADS)\n'
    assert sorted(p.name for p in out.iterdir()) == [
        'best.ckpt', 'config.json', 'curves.png', 'last.ckpt', 'metrics.jsonl']
    config = json.loads((out / 'config.json').read_text())
    assert config['args'] == {  # fit's settings are recorded once, in settings
        'model': 'cifar_resnet20_v1', 'data': 'digits', 'data_dir': None, 'image_size': 8,
        'batch_size': 64, 'ctx': None, 'hybridize': True, 'amp': False, 'out': str(out),
        'resume': None}
    assert config['settings'] == {
        'num_epochs': 2, 'lr': 0.02, 'schedule': 'cosine', 'warmup_epochs': 0, 'wd': 5e-4,
        'momentum': 0.9, 'label_smoothing': 0.0, 'seed': 0, 'num_batches': 1437 // 64,
        'num_workers': 1}
    assert set(config['versions']) == {'python', 'mxnet', 'numpy'}
    assert config['omp_num_threads'] == 1
    _, _, info = load_data('digits', 64, image_size=8)
    assert config['data'] == {'name': 'digits', 'classes': list('0123456789'),
                              'image_shape': [1, 8, 8], 'mean': list(info.mean),
                              'std': list(info.std)}
    assert [epoch for epoch, in metrics(out, 'epoch')] == [1, 2]
    assert (out / 'curves.png').read_bytes().startswith(b'\x89PNG\r\n\x1a\n')
    state = load_checkpoint(str(out / 'last.ckpt'), train.get_model('cifar_resnet20_v1'))
    assert (state['epoch'], state['batch'], state['num_batches']) == (2, 0, 1437 // 64)


def test_default_out_is_under_runs(tmp_path):
    result = cli(*SMALL, '--epochs', '1', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / 'runs').iterdir()
    assert re.fullmatch(r'cifar_resnet20_v1-digits-\d{8}-\d{6}', run_dir.name)
    assert f'wrote runs/{run_dir.name} (' in result.stdout


def check_error(argv, message, capsys):
    """``argv`` fails with exit code 2 and one line on stderr matching ``message``."""
    error = cli_error(train.main, train.PROG, argv, capsys)
    assert re.search(message, error), error


@pytest.mark.parametrize('argv, message', [
    (['--model', 'resnet19'], r"--model: unknown model 'resnet19'; did you mean resnet18"),
    (['--data', 'mnist'], r"argument --data: invalid choice: 'mnist'"),
    (['--epochs', '0'], r"argument --epochs: expected a positive integer, got '0'"),
    (['--epochs', 'two'], r"argument --epochs: expected a positive integer, got 'two'"),
    (['--batch-size', '-8'], r"argument --batch-size: expected a positive integer"),
    (['--batch-size', '5000'], r'batch_size=5000 is larger than the 1437 training images'),
    (['--lr', '0'], r"argument --lr: expected a positive number, got '0'"),
    (['--lr', 'nan'], r"argument --lr: expected a positive number, got 'nan'"),
    (['--wd=-1e-4'], r"argument --wd: expected a number >= 0, got '-1e-4'"),
    (['--momentum', '1'], r"argument --momentum: expected a number in \[0, 1\), got '1'"),
    (['--label-smoothing', '2'], r"argument --label-smoothing: expected a number in \[0, 1\)"),
    (['--warmup-epochs', '8'], r'--warmup-epochs 8 must be less than --epochs 8'),
    (['--schedule', 'linear'], r"argument --schedule: invalid choice: 'linear'"),
    (['--image-size', '8'], r'needs images of at least 17x17 pixels .*got 8x8'),
    (['--ctx', 'tpu:0'], r"bad device list 'tpu:0'"),
    (['--ctx', 'gpu'], r'cannot use gpu\(0\): this MXNet is the CPU build; install mxnet-cu112'),
    (['--amp'], r'amp \(float16 mixed precision\) needs GPUs \(--ctx gpu\)'),
    (['--resume', 'no/such/run'], r'no run directory no/such/run'),
    (['--no-such-flag'], r'unrecognized arguments: --no-such-flag'),
])
def test_bad_input(argv, message, capsys):
    check_error(argv, message, capsys)


def test_bad_resume(finished_run, tmp_path, capsys):
    out = str(finished_run[0])
    check_error(['--resume', out, '--model', 'resnet18'],
                f'{out} is a run of --model cifar_resnet20_v1, not resnet18: drop --model', capsys)
    check_error(['--resume', out, '--epochs', '5'], f'{out} is a run of --epochs 2, not 5', capsys)
    check_error(['--resume', out, '--out', 'elsewhere'], 'not in --out elsewhere', capsys)
    check_error([*SMALL, '--out', out], f'{out} already holds a run', capsys)
    check_error(['--resume', str(tmp_path)], 'is not a run directory: it has no config.json',
                capsys)


def test_resume_takes_the_run_settings_but_devices_and_data_dir(finished_run):
    out = str(finished_run[0])
    argv = ['--resume', out, '--ctx', 'cpu:0,1', '--data-dir', 'elsewhere', '--epochs', '2']
    parser = train.make_parser()
    args = train.resumed_args(parser, parser.parse_args(argv), train.given_flags(parser, argv))
    assert train.given_flags(parser, argv) == {'resume': out, 'ctx': 'cpu:0,1',
                                               'data_dir': 'elsewhere', 'epochs': 2}
    config = json.loads((finished_run[0] / 'config.json').read_text())
    settings = {'epochs': 2, 'lr': 0.02, 'schedule': 'cosine', 'warmup_epochs': 0, 'wd': 5e-4,
                'momentum': 0.9, 'label_smoothing': 0.0, 'seed': 0}
    assert {flag: config['settings'][train.SETTING_OF_FLAG[flag]] for flag in settings} \
        == settings
    assert vars(args) == {**config['args'], **settings, 'ctx': 'cpu:0,1',
                          'data_dir': 'elsewhere', 'resume': out}


def test_corrupted_checkpoint_is_named_and_kept(finished_run, tmp_path, capsys):
    copy = tmp_path / 'copy'
    shutil.copytree(finished_run[0], copy)
    checkpoint = copy / 'last.ckpt'
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # truncated
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    check_error(['--resume', str(copy)], f'checkpoint {checkpoint} is truncated or corrupted',
                capsys)
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


def test_gpu_refusal_in_a_real_process():
    result = cli('--ctx', 'gpu')
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f'{train.PROG}: error: cannot use gpu(0): this MXNet is the CPU build; install '
        'mxnet-cu112 (CUDA 11.2) or mxnet-cu117 (CUDA 11.7), version 1.9.1, with the CUDA 11 '
        'and cuDNN 8 libraries, or train on the CPU (--ctx cpu)']


def test_diverging_run_exits_3(tmp_path):
    result = cli(*SMALL, '--lr', '1e10', '--schedule', 'constant', '--out', str(tmp_path / 'r'))
    assert result.returncode == 3
    error = result.stderr.splitlines()[-1]
    assert re.fullmatch(rf'{re.escape(train.PROG)}: error: the loss became (nan|inf) at epoch 1, '
                        r'batch \d+ of 22, learning rate 1e\+10: training diverged \(try a '
                        r'smaller learning rate\); no checkpoint was written', error), error


SIGNAL_RUN = ['--model', 'cifar_resnet20_v1', '--image-size', '16', '--batch-size', '32',
              '--epochs', '3']


@pytest.fixture(scope='module')
def unbroken_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs') / 'unbroken'
    result = cli(*SIGNAL_RUN, '--out', str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_and_resume_equals_an_unbroken_run(tmp_path, signum, unbroken_run):
    out = tmp_path / 'broken'
    process = subprocess.Popen(
        [sys.executable, '-m', 'gluon_resnet.train', *SIGNAL_RUN, '--out', str(out)],
        env={**os.environ, 'OMP_NUM_THREADS': '1'}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith('epoch 1/3'):
            break
    process.send_signal(signum)
    sent = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert time.monotonic() - sent < 10
    name = signal.Signals(signum).name
    prog, run_dir = re.escape(train.PROG), re.escape(str(out))
    # the signal lands while epoch 1 is saved, or in epoch 2
    assert re.search(rf'{prog}: {name} after (epoch 1|batch \d+ of 44 of epoch 2|epoch 2); saved '
                     rf'{run_dir}/last.ckpt\nresume with: {prog} --resume {run_dir}\n$',
                     stderr), stderr
    assert 'Traceback' not in stderr and 'epoch 3/3' not in stdout

    resumed = cli('--resume', str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert 'epoch 3/3' in resumed.stdout and f'wrote {out}' in resumed.stdout
    keys = ('epoch', 'loss', 'train_acc', 'test_acc', 'lr')
    assert metrics(out, *keys) == metrics(unbroken_run, *keys)
    assert [epoch for epoch, in metrics(out, 'epoch')] == [1, 2, 3]


# What a new user runs into: every expected failure is one line and exit 2

def assert_one_line_error(result, message):
    """Exit code 2, and stderr one error line (no thread notice) matching ``message``."""
    assert result.returncode == 2, result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f'{train.PROG}: error: '), errors
    assert re.search(message, errors[0]), errors[0]
    assert 'training ' not in result.stdout  # nothing was announced or started


def test_out_is_a_file(tmp_path):
    (tmp_path / 'taken').write_text('mine')
    result = cli(*SMALL, '--out', str(tmp_path / 'taken'))
    assert_one_line_error(result, r'taken is a file: expected a folder for the run')
    assert (tmp_path / 'taken').read_text() == 'mine'


@pytest.mark.parametrize('where', ['--out in a read-only folder', 'read-only working folder'])
def test_read_only_folder(tmp_path, where):
    locked = tmp_path / 'locked'
    locked.mkdir(mode=0o555)
    out = ['--out', str(locked / 'run')] if where.startswith('--out') else []
    result = cli(*SMALL, *out, prefix=WITHOUT_ROOT_OVERRIDE, cwd=locked)
    assert_one_line_error(result, r'run.*: permission denied: choose a path you can read and write')
    assert not any(locked.iterdir())


def test_unreadable_data_files(tmp_path):
    folder = tmp_path / 'fashion-mnist'
    folder.mkdir()
    for name in ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
                 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
        (folder / name).write_bytes(b'')
        (folder / name).chmod(0)
    result = cli(*SMALL, '--data', 'fashion-mnist', '--data-dir', str(tmp_path),
                 '--out', str(tmp_path / 'run'), prefix=WITHOUT_ROOT_OVERRIDE)
    assert_one_line_error(result, r'fashion-mnist/\S+-ubyte.gz: permission denied')
    assert not (tmp_path / 'run').exists()


def test_missing_data_dir_is_not_created(tmp_path):
    result = cli(*SMALL, '--data-dir', str(tmp_path / 'typo'), '--out', str(tmp_path / 'run'))
    assert_one_line_error(result, r'--data-dir \S+typo: no such folder')
    assert sorted(tmp_path.iterdir()) == []


def test_batch_that_cannot_be_split_is_refused_before_the_run_directory(tmp_path):
    result = cli(*SMALL, '--ctx', 'cpu:0,1', '--batch-size', '1', '--out', str(tmp_path / 'r'))
    assert_one_line_error(result, r'--batch-size 1 cannot be split over the 2 devices')
    assert not (tmp_path / 'r').exists()


@pytest.mark.parametrize('argv, message', [
    (['--epoch', '1'], r'unrecognized arguments: --epoch 1'),  # no abbreviations
    (['--resume', __file__], r'--resume \S+test_train_cli.py is a file: expected the run '),
])
def test_typos_are_errors(argv, message):
    assert_one_line_error(cli(*argv), message)


@pytest.mark.parametrize('record, name, value, flag', [
    ('settings', 'num_epochs', '3', 'epochs'), ('args', 'ctx', 5, 'ctx'),
    ('settings', 'lr', -1.0, 'lr'), ('args', 'hybridize', 'yes', 'hybridize'),
    ('settings', 'schedule', 'linear', 'schedule')])
def test_hand_edited_config_is_checked_on_resume(finished_run, tmp_path, record, name, value,
                                                 flag):
    copy = tmp_path / 'copy'
    shutil.copytree(finished_run[0], copy)
    config = json.loads((copy / 'config.json').read_text())
    config[record][name] = value
    (copy / 'config.json').write_text(json.dumps(config))
    result = cli('--resume', str(copy))
    where = f'settings.{name}' if record == 'settings' else name
    assert_one_line_error(result, rf'config.json: {where} is {re.escape(repr(value))}, which '
                                  rf'--{flag} cannot be')


def test_unknown_setting_in_config_is_refused_on_resume(finished_run, tmp_path, capsys):
    """A hand-edited key (a typo of a flag's name, say) would be ignored without a word."""
    copy = tmp_path / 'copy'
    shutil.copytree(finished_run[0], copy)
    config = json.loads((copy / 'config.json').read_text())
    config['args']['bogus'] = 1
    (copy / 'config.json').write_text(json.dumps(config))
    check_error(['--resume', str(copy)], rf'^{copy}/config.json has unknown setting bogus: '
                                         rf'expected only the flags of {train.PROG}; remove it$',
                capsys)
    config['args'].update(bogus=None, epochs_=3)
    (copy / 'config.json').write_text(json.dumps(config))
    check_error(['--resume', str(copy)], r'has unknown settings bogus, epochs_: .* remove them$',
                capsys)


def test_a_run_directory_in_use_is_refused(finished_run, tmp_path, capsys):
    """Another run holds the directory (here: this process): a new run on it and a
    resumed one are refused before they write anything."""
    out = tmp_path / 'new'
    with RunDir(out).locked():
        check_error([*SMALL, '--epochs', '1', '--out', str(out)],
                    rf'^{out} is in use by another run: wait for it to end, or choose another '
                    'directory$', capsys)
        assert [p.name for p in out.iterdir()] == ['.lock']  # the holder's
    assert not any(out.iterdir())  # released: the lock file goes with it
    unfinished = tmp_path / 'unfinished'  # stopped before its first checkpoint
    unfinished.mkdir()
    shutil.copy(finished_run[0] / 'config.json', unfinished)
    before = {p.name: p.read_bytes() for p in unfinished.iterdir()}
    with RunDir(unfinished).locked():
        check_error(['--resume', str(unfinished)], f'^{unfinished} is in use by another run',
                    capsys)
    assert {p.name: p.read_bytes() for p in unfinished.iterdir()} == before


def test_resuming_a_finished_run_says_so(finished_run):
    out, _ = finished_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = cli('--resume', str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f'{out} is complete: 2 of 2 epochs trained; nothing to do\n'
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_closed_stdout_keeps_training_quietly(tmp_path):
    """``train ... | head -1``: the reader goes away after the first line; the
    run still completes its run directory, without a traceback."""
    out = tmp_path / 'run'
    process = subprocess.Popen(
        [sys.executable, '-m', 'gluon_resnet.train', *SMALL, '--epochs', '3', '--out', str(out)],
        env={**os.environ, 'OMP_NUM_THREADS': '1'}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith('training ')
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert 'Traceback' not in stderr and 'Exception ignored' not in stderr, stderr
    assert [epoch for epoch, in metrics(out, 'epoch')] == [1, 2, 3]


def test_nan_before_the_first_checkpoint_leaves_a_reusable_directory(tmp_path):
    out = tmp_path / 'run'
    result = cli(*SMALL, '--lr', '1e10', '--schedule', 'constant', '--out', str(out))
    assert result.returncode == 3 and 'no checkpoint was written' in result.stderr
    assert [p.name for p in out.iterdir()] == ['config.json']
    again = cli(*SMALL, '--epochs', '1', '--out', str(out))  # the same command, fixed
    assert again.returncode == 0, again.stderr
    assert json.loads((out / 'config.json').read_text())['settings']['lr'] == 0.02


def test_second_ctrl_c_aborts_at_once_and_the_run_resumes(tmp_path, unbroken_run):
    """Two SIGINTs 0.2 s apart in epoch 1: the second ends the process at once
    (exit 130, or killed by it while Python shuts down after the first one
    saved), never with a traceback; ``--resume`` ends as an unbroken run,
    whether a checkpoint was written or not (then it starts anew)."""
    out = tmp_path / 'broken'
    process = subprocess.Popen(
        [sys.executable, '-m', 'gluon_resnet.train', *SIGNAL_RUN, '--out', str(out)],
        env={**os.environ, 'OMP_NUM_THREADS': '1'}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith('training ')
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode in (130, -signal.SIGINT), stderr
    assert 'Traceback' not in stderr and 'Exception ignored' not in stderr, stderr
    assert f'resume with: {train.PROG} --resume {out}\n' in stderr, stderr
    resumed = cli('--resume', str(out))
    assert resumed.returncode == 0, resumed.stderr
    keys = ('epoch', 'loss', 'train_acc', 'test_acc', 'lr')
    assert metrics(out, *keys) == metrics(unbroken_run, *keys)


def test_ctrl_c_while_importing_prints_no_traceback():
    process = subprocess.Popen([sys.executable, '-m', 'gluon_resnet.train', '--help'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # MXNet takes about a second to import
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode in (0, 130) and 'Traceback' not in stderr, stderr
    if process.returncode == 130:
        assert stderr.strip() == 'aborted'


@pytest.mark.parametrize('argv, message', [
    (['--image-size', '6000'], r'first conv output 36,864,000,000 numbers: MXNet 1.9.1 holds at '
                               r'most 2,147,483,647'),
    (['--image-size', '1000'], r'training on batches of shape \(64, 1, 1000, 1000\) needs at '
                               r'least \d+\.\d GB, this machine has \d+\.\d GB available'),
])
def test_sizes_that_cannot_work_are_refused_before_allocating(tmp_path, argv, message):
    result = cli(*argv, '--out', str(tmp_path / 'run'))
    assert_one_line_error(result, message)
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('number, message', [
    (errno.ENOSPC, 'runs/x/last.ckpt: no space left on the device: free some space or choose '
                   'another disk'),
    (errno.EROFS, 'runs/x/last.ckpt: read-only file system: choose a writable folder'),
    (errno.ENOTDIR, 'runs/x/last.ckpt: a file stands where a folder is expected: choose '
                    'another path'),
    (errno.EACCES, 'runs/x/last.ckpt: permission denied: choose a path you can read and write'),
])
def test_os_errors_become_one_line_that_says_what_to_do(number, message, capsys):
    def main(argv):  # a tool that fails to write its checkpoint
        raise OSError(number, os.strerror(number), 'runs/x/last.ckpt')
    assert cli_error(main, 'tool', [], capsys) == message


def test_a_recipe_sets_defaults_that_flags_override():
    recipe = train.RECIPES['fmnist-fast']
    args = train.parse_args(['--recipe', 'fmnist-fast'])
    assert {name: getattr(args, name) for name in recipe} == recipe
    assert args.recipe == 'fmnist-fast' and args.seed == 0  # flags it does not set keep theirs
    args = train.parse_args(['--lr', '0.05', '--recipe', 'fmnist-fast', '--epochs', '2'])
    assert (args.lr, args.epochs, args.model) == (0.05, 2, recipe['model'])
    assert train.parse_args([]).model == 'resnet18'  # no recipe, the plain defaults
    help_text = train.make_parser().format_help()
    assert '--model cifar_resnet20_v1' in ' '.join(help_text.split())


def test_a_recipe_is_recorded_and_resumed(finished_run, tmp_path):
    out = tmp_path / 'recipe'
    args = train.parse_args(['--recipe', 'fmnist-fast', '--data', 'digits', '--out', str(out)])
    run_dir = train.run_directory(args)
    assert run_dir.args['recipe'] == 'fmnist-fast' and run_dir.args['data'] == 'digits'
    assert 'recipe' not in json.loads((finished_run[0] / 'config.json').read_text())['args']


def test_unknown_recipe(capsys):
    check_error(['--recipe', 'fmnist'], r"argument --recipe: invalid choice: 'fmnist' "
                                        r"\(choose from 'fmnist-fast'\)", capsys)
