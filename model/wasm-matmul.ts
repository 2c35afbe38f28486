/**
 * A faster BatchMatMul kernel for tfjs-backend-wasm 4.22.
 *
 * The stock kernel runs XNNPACK only for one non-transposed matrix pair. A batch of matrices
 * (attention: B*H pairs) or a transposed operand (every matMul gradient uses transposeA or
 * transposeB) falls to a scalar loop that is 8-40x slower. This kernel keeps every product on
 * the XNNPACK path: it materialises transposed operands with the Transpose kernel (choosing, for
 * a single pair, whichever of C = op(a) op(b) and C = (op(b)^T op(a)^T)^T moves fewer elements),
 * folds a batch that multiplies one shared matrix into a single tall product, and runs any other
 * batch of non-tiny pairs as one product per pair. Same products, deterministic; the summation order may differ
 * from the stock kernel in the last bits.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Info = tf.TensorInfo;
type Args = Parameters<tf.KernelFunc>[0];

let installed = false;
/** Multiply-adds per matrix pair below which the stock kernel's batch loop is faster (measured: M=1 vs M=8 at K=64). */
const SMALL_PAIR = 1 << 15;

/** Replaces the wasm BatchMatMul kernel. Call after the wasm backend is initialised (its setup ran). */
export function installWasmMatMul(): void {
  if (installed) return;
  const stock = tf.getKernel('BatchMatMul', 'wasm').kernelFunc;
  const transposeKernel = tf.getKernel('Transpose', 'wasm').kernelFunc;

  const kernelFunc = (args: Args): Info => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: Info; b: Info };
    const { transposeA: tA, transposeB: tB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA);
    const batchB = tf.util.sizeFromShape(outerB);
    const oddBroadcast = batchA !== batchB && batchA !== 1 && batchB !== 1;
    if ((!tA && !tB && batchA === 1 && batchB === 1) || oddBroadcast || a.dtype !== 'float32' || b.dtype !== 'float32') {
      return stock(args) as Info;
    }
    const [M, K] = tA ? last2(a).reverse() : last2(a);
    const [Kb, P] = tB ? last2(b).reverse() : last2(b);
    if (K !== Kb)
      throw new Error(`Error in matMul: inner shapes of [${a.shape}] and [${b.shape}] (transposeA=${tA}, transposeB=${tB}) must match`);
    // Many tiny pairs (decoding one token against a KV cache): the stock loop beats a per-pair call.
    if (batchB > 1 && M * K * P < SMALL_PAIR) return stock(args) as Info;
    const outShape = [...tf.backend_util.assertAndGetBroadcastShape(outerA, outerB), M, P];

    const temps: Info[] = [];
    const keep = (t: Info) => (temps.push(t), t);
    const swapLast = (x: Info): Info => {
      const perm = x.shape.map((_, i) => i);
      perm.splice(-2, 2, perm.length - 1, perm.length - 2);
      return keep(transposeKernel({ inputs: { x }, backend, attrs: { perm } }) as Info);
    };
    const plain = (x: Info, y: Info) =>
      keep(stock({ inputs: { a: x, b: y }, backend, attrs: { transposeA: false, transposeB: false } }) as Info);
    const as2d = (x: Info, rows: number, cols: number): Info => ({ ...x, shape: [rows, cols] });

    let out: Info;
    if (batchA === 1 && batchB === 1) {
      const size = (x: Info) => tf.util.sizeFromShape(x.shape);
      const direct = (tA ? size(a) : 0) + (tB ? size(b) : 0);
      const swapped = (tB ? 0 : size(b)) + (tA ? 0 : size(a)) + M * P;
      out =
        direct <= swapped
          ? plain(as2d(tA ? swapLast(a) : a, M, K), as2d(tB ? swapLast(b) : b, K, P))
          : swapLast(plain(as2d(tB ? b : swapLast(b), P, K), as2d(tA ? a : swapLast(a), K, M)));
    } else {
      const A = tA ? swapLast(a) : a; // [..., M, K]
      const B = tB ? swapLast(b) : b; // [..., K, P]
      if (batchB === 1) {
        // Every matrix of A times one shared B: a single [batch*M, K] @ [K, P] product.
        out = plain(as2d(A, batchA * M, K), as2d(B, K, P));
      } else {
        const batch = Math.max(batchA, batchB);
        out = keep(backend.makeOutput([batch * M, P], 'float32'));
        for (let i = 0; i < batch; i++) {
          const ai = batchA === 1 ? as2d(A, M, K) : piece(backend, A, i, M, K);
          const bi = piece(backend, B, i, K, P);
          const ci = stock({ inputs: { a: ai, b: bi }, backend, attrs: { transposeA: false, transposeB: false } }) as Info;
          backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(ci), i * M * P);
          for (const t of batchA === 1 ? [bi, ci] : [ai, bi, ci]) backend.disposeData(t.dataId);
        }
      }
    }
    for (const t of temps) if (t !== out) backend.disposeData(t.dataId);
    return { ...out, shape: outShape };
  };

  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc });
  installed = true;
}

function last2(x: Info): number[] {
  return x.shape.slice(-2);
}

/** Copy of the i-th [rows, cols] matrix of x. Views are taken after allocating: allocation may grow (and detach) the heap. */
function piece(backend: BackendWasm, x: Info, i: number, rows: number, cols: number): Info {
  const p = backend.makeOutput([rows, cols], 'float32');
  const n = rows * cols;
  backend.typedArrayFromHeap(p).set(backend.typedArrayFromHeap(x).subarray(i * n, (i + 1) * n));
  return p;
}
