#!/usr/bin/env bash
# Provisions @tensorflow/tfjs-node-gpu 4.22.0 for the GPU worker image from package registries only.
# Same route as infra/native-tf.ts takes for tfjs-node (see infra/native-tf.md), with TensorFlow
# 2.12.1's CUDA build and NVIDIA's CUDA 11.8 / cuDNN 8.6 wheels (gpu-wheels.txt) in place of
# tensorflow-cpu.
#
#   infra/docker/tfjs-node-gpu.sh PROJECT_DIR PREFIX
#
# PROJECT_DIR has had `npm ci --ignore-scripts`: the package files are there, and the package's
# install script, which downloads libtensorflow from a web site, never ran. PREFIX receives
# tensorflow/lib (what the addon links) and cuda/lib (what TensorFlow dlopens by soname at run
# time: list it in ld.so.conf). Needs python3 with pip, make and g++.
set -euo pipefail

project=$(realpath "$1")
prefix=$(realpath -m "$2")
pkg=$project/node_modules/@tensorflow/tfjs-node-gpu
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT

test "$(node -p "require('$pkg/package.json').version")" = 4.22.0

# 1. Wheels, checked against their pinned sha256. The platform flags choose the manylinux x86-64
#    wheels whatever the local Python is: only their shared libraries are used.
python3 -m pip download --no-deps --only-binary=:all: --require-hashes --no-cache-dir --progress-bar off \
  --disable-pip-version-check --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux2014_x86_64 -d "$wheels" -r "$(dirname "$0")/gpu-wheels.txt"

# 2. From the tensorflow wheel the two libraries and the C headers the addon includes (their
#    #include closure, as native-tf.ts takes them); from the nvidia-* wheels every shared library.
python3 - "$wheels" "$prefix" <<'PY'
import glob, os, re, shutil, sys, zipfile
wheels, prefix = sys.argv[1:]

def copy(z, member, out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with z.open(member) as src, open(out, 'wb') as dst:
        shutil.copyfileobj(src, dst, 1 << 20)

for whl in glob.glob(os.path.join(wheels, '*.whl')):
    z = zipfile.ZipFile(whl)
    if os.path.basename(whl).startswith('tensorflow-'):
        for lib in ('libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'):
            copy(z, 'tensorflow/' + lib, os.path.join(prefix, 'tensorflow', 'lib', lib))
        todo = ['tensorflow/c/c_api.h', 'tensorflow/c/eager/c_api.h', 'tensorflow/c/tf_datatype.h',
                'tensorflow/c/tf_status.h', 'tensorflow/c/tf_tensor.h', 'tensorflow/core/platform/ctstring_internal.h']
        seen = set()
        while todo:
            h = todo.pop()
            if h in seen:
                continue
            seen.add(h)
            data = z.read('tensorflow/include/' + h)  # a missing header fails here, by name
            todo += [m.decode() for m in re.findall(rb'^\s*#\s*include\s+"([^"]+)"', data, re.M)]
            copy(z, 'tensorflow/include/' + h, os.path.join(prefix, 'tensorflow', 'include', h))
    else:
        for n in z.namelist():
            if re.fullmatch(r'nvidia/[^/]+/lib/[^/]+\.so(\.\d+)*', n):
                copy(z, n, os.path.join(prefix, 'cuda', 'lib', os.path.basename(n)))
PY

# 3. deps/: the names the linker looks for (-ltensorflow -ltensorflow_framework) and the sonames
#    the addon then needs; it finds them through its RUNPATH $ORIGIN/../../deps/lib.
tf=$prefix/tensorflow
rm -rf "$pkg/deps"
mkdir -p "$pkg/deps/lib"
ln -s "$tf/lib/libtensorflow_cc.so.2" "$pkg/deps/lib/libtensorflow.so"
ln -s "$tf/lib/libtensorflow_cc.so.2" "$pkg/deps/lib/libtensorflow_cc.so.2"
ln -s "$tf/lib/libtensorflow_framework.so.2" "$pkg/deps/lib/libtensorflow_framework.so"
ln -s "$tf/lib/libtensorflow_framework.so.2" "$pkg/deps/lib/libtensorflow_framework.so.2"
cp -r "$tf/include" "$pkg/deps/include"

# 4. The addon, compiled offline by npm's node-gyp against the local Node headers (--nodedir), at
#    the napi version node-pre-gyp picks: the highest the package lists that this Node supports.
napi=$(node -p "Math.max(...require('$pkg/package.json').binary.napi_versions.filter((v) => v <= Number(process.versions.napi)))")
gyp=$(dirname "$(realpath "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
nodedir=$(dirname "$(dirname "$(realpath "$(command -v node)")")")
(cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir" --module_name=tfjs_binding \
  --module_path="$pkg/lib/napi-v$napi" --napi_build_version="$napi" -j "$(nproc)")
rm -rf "$pkg/build"

# 5. npm ci also left the CPU package without an addon; it could only fail to load.
rm -rf "$project/node_modules/@tensorflow/tfjs-node"

# 6. Probe, as native-tf.ts does. The build has no GPU: TensorFlow places the ops on its CPU device.
cd "$project"
TF_CPP_MIN_LOG_LEVEL=2 node -e "
const tf = require('@tensorflow/tfjs-node-gpu');
const c = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).arraySync();
const g = tf.grad((x) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, -2, 3])).arraySync();
if (tf.getBackend() !== 'tensorflow' || JSON.stringify([c, g]) !== '[[[19,22],[43,50]],[2,-4,6]]') throw new Error('probe failed');
console.log('tfjs-node-gpu ok, TensorFlow ' + tf.backend().binding.TF_Version);
"
