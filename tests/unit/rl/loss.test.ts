import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { collate } from '../../../model/batch';
import { scoreTokens } from '../../../model/sample';
import { Transformer } from '../../../model/transformer';
import {
  clippedObjective,
  klEstimate,
  klEstimateAt,
  lossNormaliser,
  rlGradients,
  responseLogProbs,
  type KlEstimator,
  type LossOptions,
  type UpdateSample,
} from '../../../rl/loss';
import { Prng } from '../../../util/prng';
import { expectFiniteDifferenceGradients, expectNoLeak, tinyConfig, useBackend } from '../model/helpers';

useBackend();

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
      const g = rlGradients(model, samples, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, microBatch });
      expectGradsClose(g.grads, want);
      const loss = -perSeq.reduce((s, p, i) => s + samples[i].advantage * p.value, 0) / samples.length;
      expect(Math.abs(g.loss - loss)).toBeLessThan(1e-6 * Math.abs(loss)); // float32 sums
      expect(g.tokens).toBe(responseTokens);
      tf.dispose(g.grads);
    }
  });

  it("token-mean divides the same sum by the batch's response tokens", () => {
    const want = combine(perSeq.map((p, i) => ({ c: -samples[i].advantage / responseTokens, grads: p.grads })));
    const g = rlGradients(model, samples, { lossAgg: 'token-mean', temperature: 1, alphaEnt: 0, microBatch: 3 });
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
    const g = rlGradients(model, zeroAdv, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: alpha, microBatch: 2 });
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
    const plain = rlGradients(model, samples, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, microBatch: 2 });
    const ppo = rlGradients(
      model,
      samples.map((s, i) => ({ ...s, oldLogProbs: old[i] })),
      { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, clip: { low: 0.2, high: 0.2 }, microBatch: 2 },
    );
    expectGradsClose(
      ppo.grads,
      plain.grads.map((g) => g.dataSync() as Float32Array),
    );
    // pi / pi_old = e > 1.2 with A > 0: the clipped term is constant.
    const clipped = rlGradients(
      model,
      samples.map((s, i) => ({ ...s, advantage: Math.abs(s.advantage), oldLogProbs: old[i].map((x) => x - 1) })),
      { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, clip: { low: 0.2, high: 0.2 }, microBatch: 2 },
    );
    clipped.grads.forEach((g) => expect(g.abs().max().dataSync()[0]).toBe(0));
    tf.dispose([...plain.grads, ...ppo.grads, ...clipped.grads]);
  });

  it('responseLogProbs sums log pi over response tokens only, and leaks nothing', async () => {
    const got = await expectNoLeak(() => responseLogProbs(model, samples, 2, 1));
    got.sums.forEach((x, i) => expect(x).toBeCloseTo(perSeq[i].value, 4)); // in input order, though scored shortest first
    await expectNoLeak(() =>
      tf.dispose(rlGradients(model, samples, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0.1, microBatch: 2 }).grads),
    );
  });
  it("micro-batches group sequences of similar length: padding only to each pair's longest", () => {
    const g = rlGradients(model, samples, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, microBatch: 2 });
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
    const g = rlGradients(model, samples, { lossAgg: 'seq-mean-token-sum', temperature: T, alphaEnt: 0, microBatch: 2 });
    expectGradsClose(g.grads, want);
    const lps = responseLogProbs(model, samples, 2, T);
    samples.forEach((s, i) => expect(lps.sums[i]).toBeCloseTo(gradOf(s, tempered).value, 4));
    tf.dispose(g.grads);
  });

  it('selection weights: -(1/sum w) sum_i w_i A_i grad log pi(y_i); weight 2 equals the sample taken twice', () => {
    const w = [2, 0.5, 1, 3, 1];
    const weighted = samples.map((s, i) => ({ ...s, weight: w[i] }));
    const W = w.reduce((a, b) => a + b, 0);
    const want = combine(perSeq.map((p, i) => ({ c: (-w[i] * samples[i].advantage) / W, grads: p.grads })));
    const g = rlGradients(model, weighted, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, microBatch: 2 });
    expectGradsClose(g.grads, want);
    const twice = rlGradients(model, [samples[0], ...samples], {
      lossAgg: 'seq-mean-token-sum',
      temperature: 1,
      alphaEnt: 0,
      microBatch: 2,
    });
    const doubled = rlGradients(
      model,
      samples.map((s, i) => ({ ...s, weight: i === 0 ? 2 : 1 })),
      { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, microBatch: 2 },
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
        { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt, microBatch: 5 },
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

/** The loss of rl/loss.ts as it was before rl.lossAgg, rl.kl and the asymmetric clip: one micro-batch, the same ops in the same order. */
function legacyGradients(all: readonly UpdateSample[], normalisation: 'sequence' | 'token', alphaEnt: number, clip?: number) {
  const length = (s: UpdateSample) => s.tokens.length - s.promptLength;
  const tokens = all.reduce((n, s) => n + length(s), 0);
  const Z = all.reduce((n, s) => n + (s.weight ?? 1) * (normalisation === 'sequence' ? 1 : length(s)), 0);
  const chunk = all.slice().sort((a, b) => a.tokens.length - b.tokens.length);
  const b = collate(
    chunk.map((s) => ({ tokens: s.tokens, lossMask: s.tokens.map((_, t) => (t >= s.promptLength ? 1 : 0)) })),
    model.config.contextLength,
  );
  const [B, T] = b.mask.shape;
  const adv = tf.tensor2d(
    chunk.map((s) => s.advantage * (s.weight ?? 1)),
    [B, 1],
  );
  const grid = new Float32Array(B * T);
  chunk.forEach((s, i) => s.oldLogProbs && grid.set(s.oldLogProbs, i * T + s.promptLength - 1));
  const old = tf.tensor2d(grid, [B, T]);
  const terms = () => {
    const { logProbs, entropies } = scoreTokens(model, b.inputs, b.targets, 1);
    let obj: tf.Tensor = logProbs.mul(adv);
    if (clip !== undefined) {
      const ratio = logProbs.sub(old).exp();
      obj = tf.minimum(ratio.mul(adv), ratio.clipByValue(1 - clip, 1 + clip).mul(adv));
    }
    return {
      pg: obj
        .mul(b.mask)
        .sum()
        .mul(-1 / Z) as tf.Scalar,
      ent: entropies
        .mul(b.mask)
        .sum()
        .mul(-alphaEnt / tokens) as tf.Scalar,
    };
  };
  const pg = tf.variableGrads(() => terms().pg, model.variables);
  const ent = tf.variableGrads(() => terms().ent, model.variables);
  const loss = pg.value.dataSync()[0] + ent.value.dataSync()[0];
  const grads = model.variables.map((v) => pg.grads[v.name].add(ent.grads[v.name]).dataSync() as Float32Array);
  tf.dispose([pg.value, ent.value, ...Object.values(pg.grads), ...Object.values(ent.grads), adv, old, b.inputs, b.targets, b.mask]);
  return { loss, grads };
}

/** Each sample's log pi of its response tokens (T = 1), from the scorer. */
const tokenLogProbs = () => responseLogProbs(model, samples, samples.length, 1).tokens;
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe('the defaults reproduce the loss from before the choices existed', () => {
  const weighted = () => samples.map((s, i) => ({ ...s, weight: [2, 0.5, 1, 3, 1][i] }));
  const cases: [string, LossOptions['lossAgg'], 'sequence' | 'token', boolean][] = [
    ['seq-mean-token-sum (the default) = sequence', 'seq-mean-token-sum', 'sequence', false],
    ['token-mean = token', 'token-mean', 'token', false],
    ['PPO, clipHigh = clip, no dual clip', 'seq-mean-token-sum', 'sequence', true],
  ];
  for (const [name, lossAgg, normalisation, ppo] of cases) {
    it(`${name}: the same bits`, () => {
      const lp = tokenLogProbs();
      const batch = weighted().map((s, i) => ({ ...s, oldLogProbs: lp[i].map((x, t) => x - 0.05 * (t % 5)) }));
      const want = legacyGradients(batch, normalisation, 0.1, ppo ? 0.2 : undefined);
      const g = rlGradients(model, batch, {
        lossAgg,
        temperature: 1,
        alphaEnt: 0.1,
        microBatch: 5,
        ...(ppo && { clip: { low: 0.2, high: 0.2 } }),
      });
      expect(g.loss).toBe(want.loss);
      expect(g.grads.map((x) => x.dataSync() as Float32Array)).toEqual(want.grads);
      expect(g.klLoss).toBeNaN();
      tf.dispose(g.grads);
    });
  }
});

describe('loss aggregation (rl.lossAgg)', () => {
  it('lossNormaliser: Z and the per-sequence scale of each mode, by hand', () => {
    // Two sequences of 2 and 4 response tokens, weights 1 and 3, maxNewTokens 8.
    const at = (mode: LossOptions['lossAgg']) => lossNormaliser([2, 4], [1, 3], mode, 8);
    expect(at('seq-mean-token-sum')).toEqual({ Z: 4, scale: [1, 3] }); // (1 * S1 + 3 * S2) / 4
    expect(at('token-mean')).toEqual({ Z: 14, scale: [1, 3] }); // / (1 * 2 + 3 * 4)
    expect(at('seq-mean-token-mean')).toEqual({ Z: 4, scale: [0.5, 0.75] }); // (1 * S1 / 2 + 3 * S2 / 4) / 4
    expect(at('seq-mean-token-sum-norm')).toEqual({ Z: 32, scale: [1, 3] }); // / (8 * 4)
    expect(() => lossNormaliser([2], [1], 'seq-mean-token-sum-norm')).toThrow(/maxTokens/);
  });

  const w = [2, 0.5, 1, 3, 1];
  const len = samples.map((s) => s.tokens.length - s.promptLength);
  // -(1/Z) sum_i c_i A_i sum_t log pi, each mode's c_i and Z written out.
  const modes: [LossOptions['lossAgg'], (i: number) => number][] = [
    ['seq-mean-token-sum', (i) => w[i] / sum(w)],
    ['token-mean', (i) => w[i] / sum(w.map((x, j) => x * len[j]))],
    ['seq-mean-token-mean', (i) => w[i] / len[i] / sum(w)],
    ['seq-mean-token-sum-norm', (i) => w[i] / (20 * sum(w))],
  ];
  for (const [lossAgg, c] of modes) {
    it(`${lossAgg}: loss and gradient of -(sum_i c_i A_i sum_t log pi) with selection weights`, () => {
      const lp = tokenLogProbs();
      const batch = samples.map((s, i) => ({ ...s, weight: w[i] }));
      const g = rlGradients(model, batch, { lossAgg, maxTokens: 20, temperature: 1, alphaEnt: 0, microBatch: 2 });
      const want = -samples.reduce((a, s, i) => a + c(i) * s.advantage * sum(lp[i]), 0);
      expect(Math.abs(g.loss - want)).toBeLessThan(1e-5 * Math.abs(want));
      expectGradsClose(g.grads, combine(perSeq.map((p, i) => ({ c: -c(i) * samples[i].advantage, grads: p.grads }))));
      tf.dispose(g.grads);
    });
  }
});

describe('PPO objective: clip-higher and dual clip', () => {
  it('clippedObjective on hand-computed tokens (eps_low 0.2, eps_high 0.28, c = 3)', () => {
    const ratio = [1.5, 1.25, 0.5, 0.5, 5, 1.5, 4];
    const adv = [1, 1, 1, -1, -1, -2, -2];
    const run = (clip: { low: number; high: number; dual?: number }) =>
      tf.tidy(() => Array.from(clippedObjective(tf.tensor1d(ratio), tf.tensor1d(adv), clip).dataSync()));
    const close = (got: number[], want: number[]) => got.forEach((x, i) => expect(x).toBeCloseTo(want[i], 6));
    // A > 0: min(rho, clip(rho)) A, capped at 1.2 (symmetric) or 1.28 (clip-higher); A < 0: the larger |.| of rho A and clip(rho) A.
    close(run({ low: 0.2, high: 0.2 }), [1.2, 1.2, 0.5, -0.8, -5, -3, -8]);
    close(run({ low: 0.2, high: 0.28 }), [1.28, 1.25, 0.5, -0.8, -5, -3, -8]);
    // Dual clip: A < 0 tokens are bounded below by c A = -3 (A = -1) or -6 (A = -2); A > 0 unchanged.
    close(run({ low: 0.2, high: 0.28, dual: 3 }), [1.28, 1.25, 0.5, -0.8, -3, -3, -6]);
  });

  it('through rlGradients: the loss is -(1/N) sum_i sum_t objective(rho_it, A_i), rho set through pi_old', () => {
    const lp = tokenLogProbs();
    // log rho = 0.5 on even tokens (rho 1.65), -1.5 on odd ones (rho 0.22); advantages of both signs.
    const logRho = (t: number) => (t % 2 ? -1.5 : 0.5);
    const batch = samples.map((s, i) => ({ ...s, oldLogProbs: lp[i].map((x, t) => x - logRho(t)) }));
    const clip = { low: 0.2, high: 0.28, dual: 3 };
    const objective = (rho: number, A: number) => {
      const o = Math.min(rho * A, Math.min(Math.max(rho, 0.8), 1.28) * A);
      return A < 0 ? Math.max(o, 3 * A) : o;
    };
    const g = rlGradients(model, batch, { lossAgg: 'seq-mean-token-sum', temperature: 1, alphaEnt: 0, clip, microBatch: 2 });
    const want = -sum(samples.map((s, i) => sum(lp[i].map((_, t) => objective(Math.exp(logRho(t)), s.advantage))))) / samples.length;
    expect(samples.some((s) => s.advantage < -3 / Math.exp(0.5))).toBe(true); // some tokens meet the dual clip
    expect(Math.abs(g.loss - want)).toBeLessThan(1e-4 * Math.abs(want));
    tf.dispose(g.grads);
  });
});

describe('KL estimators and the KL in the loss', () => {
  // (log pi, log pi_anchor) pairs: x = log pi - log pi_anchor = 1, -1, 0, 0.5.
  const pairs = [
    [-1, -2],
    [-2, -1],
    [-0.5, -0.5],
    [-0.25, -0.75],
  ];
  const want: Record<KlEstimator, number[]> = {
    k1: [1, -1, 0, 0.5],
    k2: [0.5, 0.5, 0, 0.125],
    // exp(-x) + x - 1: e^-1 = 0.36787944, e - 2 = 0.71828183, 0, e^-0.5 - 0.5 = 0.10653066
    k3: [0.36787944117144233, 0.7182818284590451, 0, 0.10653065971263342],
  };
  for (const est of ['k1', 'k2', 'k3'] as const) {
    it(`${est} on given log-prob pairs, in double precision and as tensors`, () => {
      pairs.forEach(([lp, ref], i) => expect(klEstimateAt(lp, ref, est)).toBeCloseTo(want[est][i], 12));
      const t = tf.tidy(() =>
        Array.from(klEstimate(tf.tensor1d(pairs.map((p) => p[0])), tf.tensor1d(pairs.map((p) => p[1])), est).dataSync()),
      );
      t.forEach((x, i) => expect(x).toBeCloseTo(want[est][i], 6));
    });
  }

  let anchor: Transformer;
  let ref: number[][];
  beforeAll(() => {
    anchor = new Transformer(tinyConfig(), new Prng(99));
    ref = responseLogProbs(anchor, samples, 5, 1).tokens;
  });

  const cases: [KlEstimator, LossOptions['lossAgg']][] = [
    ['k1', 'token-mean'],
    ['k2', 'seq-mean-token-mean'],
    ['k3', 'seq-mean-token-sum-norm'],
  ];
  for (const [estimator, lossAgg] of cases) {
    it(`${estimator} (${lossAgg}): the loss gains beta x the aggregated estimator, its gradient matches finite differences`, () => {
      const w = [1, 2, 1, 0.5, 1];
      const batch = samples.map((s, i) => ({ ...s, weight: w[i], refLogProbs: ref[i] }));
      const opts: LossOptions = { lossAgg, maxTokens: 20, temperature: 1, alphaEnt: 0, kl: { beta: 0.7, estimator }, microBatch: 2 };
      const g = rlGradients(model, batch, opts);
      const plain = rlGradients(model, batch, { ...opts, kl: undefined });
      const lp = tokenLogProbs();
      const { Z, scale } = lossNormaliser(
        samples.map((s) => s.tokens.length - s.promptLength),
        w,
        lossAgg,
        20,
      );
      const kl = (0.7 / Z) * sum(lp.map((l, i) => scale[i] * sum(l.map((x, t) => klEstimateAt(x, ref[i][t], estimator)))));
      expect(Math.abs(kl)).toBeGreaterThan(1e-3);
      expect(g.klLoss).toBeCloseTo(kl, 5);
      expect(g.loss).toBeCloseTo(plain.loss + kl, 5);
      const grads = Object.fromEntries(model.variables.map((v, k) => [v.name, g.grads[k]]));
      const loss = () => {
        const x = rlGradients(model, batch, opts);
        tf.dispose(x.grads);
        return tf.scalar(x.loss);
      };
      expectFiniteDifferenceGradients(model, loss, grads, new Prng(5), { rel: 3e-2, abs: 2e-4 });
      tf.dispose([...g.grads, ...plain.grads]);
    });
  }

  it('refuses a KL in the loss without the anchor log-probs', () => {
    expect(() =>
      rlGradients(model, samples, {
        lossAgg: 'seq-mean-token-sum',
        temperature: 1,
        alphaEnt: 0,
        kl: { beta: 1, estimator: 'k3' },
        microBatch: 2,
      }),
    ).toThrow(/refLogProbs/);
  });
});
