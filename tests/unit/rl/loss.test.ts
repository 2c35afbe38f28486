import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { scoreTokens } from '../../../model/sample';
import { Transformer } from '../../../model/transformer';
import { rlGradients, responseLogProbs, type UpdateSample } from '../../../rl/loss';
import { Prng } from '../../../util/prng';
import { expectNoLeak, tinyConfig, useWasm } from '../model/helpers';

useWasm();

const rng = new Prng(17);
let model: Transformer;
// Five sequences of different lengths and prompt lengths, random advantages of both signs.
const samples: UpdateSample[] = [9, 16, 12, 7, 14].map((n, i) => ({
  tokens: Array.from({ length: n }, () => 5 + rng.int(96)),
  promptLength: 2 + (i % 3),
  advantage: rng.normal(),
}));
const responseTokens = samples.reduce((s, x) => s + x.tokens.length - x.promptLength, 0);

/** Row tensors of one sequence: inputs, targets, response mask. */
function row(s: UpdateSample) {
  const T = s.tokens.length - 1;
  return {
    inputs: tf.tensor2d(s.tokens.slice(0, -1), [1, T], 'int32'),
    targets: tf.tensor2d(s.tokens.slice(1), [1, T], 'int32'),
    mask: tf.tensor2d(
      s.tokens.slice(1).map((_, t) => (t + 1 >= s.promptLength ? 1 : 0)),
      [1, T],
    ),
  };
}

/** grad of f(model) for one sequence, as flat arrays in variable order, plus f's value. */
function gradOf(s: UpdateSample, f: (r: ReturnType<typeof row>) => tf.Scalar): { value: number; grads: Float32Array[] } {
  const r = row(s);
  const { value, grads } = tf.variableGrads(() => f(r), model.variables);
  const out = { value: value.dataSync()[0], grads: model.variables.map((v) => grads[v.name].dataSync() as Float32Array) };
  tf.dispose([value, ...Object.values(grads), r.inputs, r.targets, r.mask]);
  return out;
}

/** sum_i c_i * grad_i, per variable. */
function combine(parts: { c: number; grads: Float32Array[] }[]): Float32Array[] {
  return model.variables.map((v, k) => {
    const acc = new Float32Array(v.size);
    for (const { c, grads } of parts) grads[k].forEach((g, j) => (acc[j] += c * g));
    return acc;
  });
}

function expectGradsClose(got: tf.Tensor[], want: Float32Array[], tol = 2e-5) {
  const scale = Math.max(...want.map((w) => w.reduce((m, x) => Math.max(m, Math.abs(x)), 0)));
  expect(scale).toBeGreaterThan(1e-4);
  got.forEach((g, k) => {
    const a = g.dataSync();
    want[k].forEach((w, j) => expect(Math.abs(a[j] - w)).toBeLessThan(tol * scale));
  });
}

const seqLogProb = (r: ReturnType<typeof row>) => scoreTokens(model, r.inputs, r.targets).logProbs.mul(r.mask).sum() as tf.Scalar;
let perSeq: ReturnType<typeof gradOf>[];

beforeAll(() => {
  model = new Transformer(tinyConfig(), rng.fork('init'));
  perSeq = samples.map((s) => gradOf(s, seqLogProb));
});

describe('rlGradients', () => {
  it('equals the REINFORCE estimator -(1/N) sum_i A_i grad log pi(y_i), built from per-sequence grads', () => {
    const want = combine(perSeq.map((p, i) => ({ c: -samples[i].advantage / samples.length, grads: p.grads })));
    for (const microBatch of [1, 2, 5]) {
      const g = rlGradients(model, samples, { normalisation: 'sequence', temperature: 1, alphaEnt: 0, microBatch });
      expectGradsClose(g.grads, want);
      const loss = -perSeq.reduce((s, p, i) => s + samples[i].advantage * p.value, 0) / samples.length;
      expect(Math.abs(g.loss - loss)).toBeLessThan(1e-6 * Math.abs(loss)); // float32 sums
      expect(g.tokens).toBe(responseTokens);
      tf.dispose(g.grads);
    }
  });

  it("'token' normalisation divides the same sum by the batch's response tokens", () => {
    const want = combine(perSeq.map((p, i) => ({ c: -samples[i].advantage / responseTokens, grads: p.grads })));
    const g = rlGradients(model, samples, { normalisation: 'token', temperature: 1, alphaEnt: 0, microBatch: 3 });
    expectGradsClose(g.grads, want);
    tf.dispose(g.grads);
  });

  it('entropy bonus: gradient of -alpha * mean response-token entropy, entropy computed independently', () => {
    const alpha = 0.5;
    const entropySum = (r: ReturnType<typeof row>) => {
      const p = tf.softmax(model.forward(r.inputs));
      return p.mul(tf.log(p)).sum(-1).neg().mul(r.mask).sum() as tf.Scalar;
    };
    const want = combine(samples.map((s) => ({ c: -alpha / responseTokens, grads: gradOf(s, entropySum).grads })));
    const zeroAdv = samples.map((s) => ({ ...s, advantage: 0 }));
    const g = rlGradients(model, zeroAdv, { normalisation: 'sequence', temperature: 1, alphaEnt: alpha, microBatch: 2 });
    expectGradsClose(g.grads, want, 1e-4);
    tf.dispose(g.grads);
  });

  it('PPO: at ratio 1 the same gradient as plain policy gradient; fully clipped tokens give none', () => {
    const old = samples.map((s) => {
      const r = row(s);
      const lp = tf.tidy(() => scoreTokens(model, r.inputs, r.targets).logProbs.dataSync());
      tf.dispose([r.inputs, r.targets, r.mask]);
      return Array.from(lp.slice(s.promptLength - 1));
    });
    const plain = rlGradients(model, samples, { normalisation: 'sequence', temperature: 1, alphaEnt: 0, microBatch: 2 });
    const ppo = rlGradients(
      model,
      samples.map((s, i) => ({ ...s, oldLogProbs: old[i] })),
      { normalisation: 'sequence', temperature: 1, alphaEnt: 0, clip: 0.2, microBatch: 2 },
    );
    expectGradsClose(
      ppo.grads,
      plain.grads.map((g) => g.dataSync() as Float32Array),
    );
    // pi / pi_old = e > 1.2 with A > 0: the clipped term is constant.
    const clipped = rlGradients(
      model,
      samples.map((s, i) => ({ ...s, advantage: Math.abs(s.advantage), oldLogProbs: old[i].map((x) => x - 1) })),
      { normalisation: 'sequence', temperature: 1, alphaEnt: 0, clip: 0.2, microBatch: 2 },
    );
    clipped.grads.forEach((g) => expect(g.abs().max().dataSync()[0]).toBe(0));
    tf.dispose([...plain.grads, ...ppo.grads, ...clipped.grads]);
  });

  it('responseLogProbs sums log pi over response tokens only, and leaks nothing', async () => {
    const got = await expectNoLeak(() => responseLogProbs(model, samples, 2, 1));
    got.forEach((x, i) => expect(x).toBeCloseTo(perSeq[i].value, 4)); // in input order, though scored shortest first
    await expectNoLeak(() =>
      tf.dispose(rlGradients(model, samples, { normalisation: 'sequence', temperature: 1, alphaEnt: 0.1, microBatch: 2 }).grads),
    );
  });
  it("micro-batches group sequences of similar length: padding only to each pair's longest", () => {
    const g = rlGradients(model, samples, { normalisation: 'sequence', temperature: 1, alphaEnt: 0, microBatch: 2 });
    // Lengths 9, 16, 12, 7, 14 -> sorted 7, 9 | 12, 14 | 16: padded to 8, 13, 15 positions per row.
    expect(g.positions).toBe(2 * 8 + 2 * 13 + 15);
    tf.dispose(g.grads);
  });

  it('scores the tempered policy softmax(z / T): the gradient at T = 1.5 is that of log softmax(logits / 1.5)', () => {
    const T = 1.5;
    const tempered = (r: ReturnType<typeof row>) => {
      const lp = tf.logSoftmax(model.forward(r.inputs).div(T)) as tf.Tensor3D;
      const picked = tf.oneHot(r.targets, lp.shape[2]).mul(lp).sum(-1);
      return picked.mul(r.mask).sum() as tf.Scalar;
    };
    const want = combine(samples.map((s) => ({ c: -s.advantage / samples.length, grads: gradOf(s, tempered).grads })));
    const g = rlGradients(model, samples, { normalisation: 'sequence', temperature: T, alphaEnt: 0, microBatch: 2 });
    expectGradsClose(g.grads, want);
    const lps = responseLogProbs(model, samples, 2, T);
    samples.forEach((s, i) => expect(lps[i]).toBeCloseTo(gradOf(s, tempered).value, 4));
    tf.dispose(g.grads);
  });

  it('selection weights: -(1/sum w) sum_i w_i A_i grad log pi(y_i); weight 2 equals the sample taken twice', () => {
    const w = [2, 0.5, 1, 3, 1];
    const weighted = samples.map((s, i) => ({ ...s, weight: w[i] }));
    const W = w.reduce((a, b) => a + b, 0);
    const want = combine(perSeq.map((p, i) => ({ c: (-w[i] * samples[i].advantage) / W, grads: p.grads })));
    const g = rlGradients(model, weighted, { normalisation: 'sequence', temperature: 1, alphaEnt: 0, microBatch: 2 });
    expectGradsClose(g.grads, want);
    const twice = rlGradients(model, [samples[0], ...samples], { normalisation: 'sequence', temperature: 1, alphaEnt: 0, microBatch: 2 });
    const doubled = rlGradients(
      model,
      samples.map((s, i) => ({ ...s, weight: i === 0 ? 2 : 1 })),
      { normalisation: 'sequence', temperature: 1, alphaEnt: 0, microBatch: 2 },
    );
    expectGradsClose(
      doubled.grads,
      twice.grads.map((x) => x.dataSync() as Float32Array),
    );
    tf.dispose([...g.grads, ...twice.grads, ...doubled.grads]);
  });

  it('reports the gradient norms of the policy-gradient and entropy terms apart', () => {
    const only = (alphaEnt: number, adv: number) =>
      rlGradients(
        model,
        samples.map((s) => ({ ...s, advantage: adv * s.advantage })),
        { normalisation: 'sequence', temperature: 1, alphaEnt, microBatch: 5 },
      );
    const pg = only(0, 1);
    const ent = only(0.3, 0);
    const norm = (gs: tf.Tensor[]) => Math.sqrt(gs.reduce((s, g) => s + g.square().sum().dataSync()[0], 0));
    const both = only(0.3, 1);
    expect(both.pgNorm).toBeCloseTo(norm(pg.grads), 4);
    expect(both.entropyNorm).toBeCloseTo(norm(ent.grads), 4);
    tf.dispose([...pg.grads, ...ent.grads, ...both.grads]);
  });
});
