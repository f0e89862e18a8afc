"""The models and faults of cli_fault_test.sh (Debian's /usr/bin/python3, python3-onnx, numpy).

  fault_inject.py convs OUT.onnx LAYERS CHANNELS    a chain of 3x3 Conv+Relu layers (big weights)
  fault_inject.py matmul OUT.onnx N                  y[1,N] = x[1,N] @ w[N,N]
  fault_inject.py wide OUT.onnx                      y[N] = ReduceSum(x[N,16] @ w[16,16384], 1)
  fault_inject.py patch FILE OFFSET HEXBYTES         overwrite bytes of FILE at OFFSET
  fault_inject.py kill-at-write WORKDIR KILN ARGS..  run KILN, SIGKILL it as soon as it has a
      non-empty file open for writing in WORKDIR (the engine being saved); prints what it saw
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np


def save(graph, path):
    import onnx
    from onnx import helper
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)


def convs(path, layers, channels):
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], 'x'
    for i in range(layers):
        cin = 3 if i == 0 else channels
        w = (rng.standard_normal((channels, cin, 3, 3)) * 0.05).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f'w{i}'))
        nodes.append(helper.make_node('Conv', [prev, f'w{i}'], [f'c{i}'], pads=[1, 1, 1, 1], name=f'conv{i}'))
        nodes.append(helper.make_node('Relu', [f'c{i}'], [f'r{i}'], name=f'relu{i}'))
        prev = f'r{i}'
    nodes.append(helper.make_node('Identity', [prev], ['y'], name='out'))
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, channels, 8, 8])
    save(helper.make_graph(nodes, 'convs', [x], [y], inits), path)


def matmul(path, n):
    from onnx import helper, numpy_helper, TensorProto
    w = np.linspace(-1, 1, n * n, dtype=np.float32).reshape(n, n)
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, n])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, n])
    node = helper.make_node('MatMul', ['x', 'w'], ['y'], name='mm')
    save(helper.make_graph([node], 'mm', [x], [y], [numpy_helper.from_array(w, 'w')]), path)


def wide(path):
    from onnx import helper, numpy_helper, TensorProto
    w = np.linspace(-1, 1, 16 * 16384, dtype=np.float32).reshape(16, 16384)
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 16])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N'])
    nodes = [helper.make_node('MatMul', ['x', 'w'], ['h'], name='mm'),
             helper.make_node('ReduceSum', ['h', 'axes'], ['y'], keepdims=0, name='sum')]
    inits = [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(np.array([1], dtype=np.int64), 'axes')]
    save(helper.make_graph(nodes, 'wide', [x], [y], inits), path)


def patch(path, offset, hexbytes):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(bytes.fromhex(hexbytes))


def writing_in(pid, workdir):
    """A file with data in it that the process has open for writing in workdir: its fd link and
    size so far, or None. (Empty files do not count: kiln's check that the folder is writable
    opens one before the build.)"""
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
            if not target.startswith(workdir + '/') or target.endswith('.onnx'):
                continue
            with open(f'/proc/{pid}/fdinfo/{fd}') as f:
                flags = int(f.read().split('flags:')[1].split()[0], 8)
            size = os.stat(f'/proc/{pid}/fd/{fd}').st_size
            if flags & (os.O_WRONLY | os.O_RDWR) and size > 0:
                return f'{target} ({size} bytes so far)'

        except (OSError, IndexError, ValueError):
            continue
    return None


def kill_at_write(workdir, argv):
    workdir = os.path.realpath(workdir)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = None
    while p.poll() is None:
        seen = writing_in(p.pid, workdir)
        if seen:
            os.kill(p.pid, signal.SIGKILL)
            break
        time.sleep(0.0002)
    p.wait()
    print(f'killed while writing {seen}' if seen else f'exited ({p.returncode}) before it was seen writing')


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'convs':
        convs(args[0], int(args[1]), int(args[2]))
    elif cmd == 'matmul':
        matmul(args[0], int(args[1]))
    elif cmd == 'wide':
        wide(args[0])
    elif cmd == 'patch':
        patch(args[0], int(args[1]), args[2])
    elif cmd == 'kill-at-write':
        kill_at_write(args[0], args[1:])
    else:
        sys.exit(f'unknown command {cmd}')
