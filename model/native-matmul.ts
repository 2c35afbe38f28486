/**
 * A cheaper BatchMatMul kernel for small products on the tensorflow backend (tfjs-node 4.22).
 *
 * The stock kernel runs every product as TF's BatchMatMulV2, which oneDNN takes over (on by
 * default on x86). oneDNN costs about 120 us per call before any arithmetic: a [16,256]x[256,256]
 * product took 150-220 us against 35-55 us for TF's plain MatMul op (Eigen), and decoding one token
 * is a chain of such products. Small products therefore go to TF's MatMul (rank 2) or to the
 * non-broadcasting BatchMatMul (equal batch dims); large ones stay on oneDNN, which is as fast or
 * faster there. Which op runs depends only on the operands' shapes, so results are deterministic;
 * they differ from the stock kernel's in the last bits.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type Args = Parameters<tf.KernelFunc>[0];

/** Multiply-adds up to which a rank-2 product runs as MatMul (measured: faster up to ~5e7, equal beyond). */
export const MATMUL_LIMIT = 1 << 24;
/** Multiply-adds up to which a batch of products runs as BatchMatMul (measured: faster at 2e5-1e6, slower at 3e6). */
export const BATCH_LIMIT = 1 << 20;

interface NodeBackend {
  binding: { TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: unknown }[], inputs: Info[]): Info;
}

let installed = false;

/** Runs a TensorFlow op by name on the tensorflow backend: float32 type attribute T plus boolean attributes. */
export function runTfOp(op: string, inputs: Info[], bools: Record<string, boolean> = {}): Info {
  const backend = tf.backend() as unknown as NodeBackend;
  const { TF_ATTR_BOOL, TF_ATTR_TYPE, TF_FLOAT } = backend.binding;
  return backend.executeSingleOutput(
    op,
    [
      { name: 'T', type: TF_ATTR_TYPE, value: TF_FLOAT },
      ...Object.entries(bools).map(([name, value]) => ({ name, type: TF_ATTR_BOOL, value })),
    ],
    inputs,
  );
}

/** Replaces the tensorflow backend's BatchMatMul kernel. Call after that backend is set. */
export function installNativeMatMul(): void {
  if (installed) return;
  const stock = tf.getKernel('BatchMatMul', 'tensorflow').kernelFunc;
  const kernelFunc = (args: Args): Info => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const { transposeA: tA, transposeB: tB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const op = smallOp(a, b, tA, tB);
    if (!op) return stock(args) as Info;
    return runTfOp(op, [a, b], op === 'MatMul' ? { transpose_a: tA, transpose_b: tB } : { adj_x: tA, adj_y: tB });
  };
  tf.unregisterKernel('BatchMatMul', 'tensorflow');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'tensorflow', kernelFunc });
  installed = true;
}

/** The TF op that runs op(a) op(b) cheaper than oneDNN, or null for the stock kernel. */
export function smallOp(a: Info, b: Info, tA: boolean, tB: boolean): 'MatMul' | 'BatchMatMul' | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length !== b.shape.length) return null;
  const [ar, ac] = a.shape.slice(-2);
  const [M, K] = tA ? [ac, ar] : [ar, ac];
  const P = tB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  if (a.shape.length === 2) return M * K * P <= MATMUL_LIMIT ? 'MatMul' : null;
  const outer = a.shape.slice(0, -2);
  if (outer.some((d, i) => d !== b.shape[i])) return null; // broadcasting: BatchMatMulV2 only
  return tf.util.sizeFromShape(outer) * M * K * P <= BATCH_LIMIT ? 'BatchMatMul' : null;
}
