import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Decoder } from '../../../model/decode';
import { drawToken, generate, sampleToken, samplingDistribution, scoreTokens } from '../../../model/sample';
import { BOS, EOS } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { Prng } from '../../../util/prng';
import { decoderDeviation, expectNoLeak, tinyConfig, useBackend } from './helpers';

useBackend();

function softmax(xs: number[], T = 1): number[] {
  const m = Math.max(...xs.map((x) => x / T));
  const e = xs.map((x) => Math.exp(x / T - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Chi-square statistic, merging categories with expected count < 5; returns [stat, dof]. */
function chiSquare(counts: number[], probs: number[], n: number): [number, number] {
  let stat = 0;
  let dof = -1;
  let restObs = 0;
  let restExp = 0;
  probs.forEach((p, i) => {
    if (n * p >= 5) {
      stat += (counts[i] - n * p) ** 2 / (n * p);
      dof++;
    } else {
      restObs += counts[i];
      restExp += n * p;
    }
  });
  if (restExp > 0) {
    stat += (restObs - restExp) ** 2 / restExp;
    dof++;
  }
  return [stat, dof];
}

/** Chi-square critical value at p = 0.001 (Wilson-Hilferty). */
function critical(dof: number): number {
  const z = 3.0902;
  return dof * (1 - 2 / (9 * dof) + z * Math.sqrt(2 / (9 * dof))) ** 3;
}

const model = () => new Transformer(tinyConfig({ initStd: 0.5, contextLength: 24 }), new Prng(5));

describe('sampling distribution', () => {
  const logits = [2, 1, 0.5, 0, -1, -3];

  it('temperature: draw frequencies match softmax(logits / T) (chi-square)', () => {
    const rng = new Prng(1);
    for (const T of [0.5, 1, 1.7]) {
      const n = 30_000;
      const counts = new Array(logits.length).fill(0);
      for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: T }, rng)]++;
      const [stat, dof] = chiSquare(counts, softmax(logits, T), n);
      expect(stat).toBeLessThan(critical(dof));
    }
  });

  it('drawToken reports log pi_T of the drawn token and the entropy of pi_T, untruncated, whether or not sampling truncates', () => {
    for (const opts of [{ temperature: 1.3 }, { temperature: 0.7, topP: 0.8, minP: 0.05 }, { greedy: true }]) {
      const T = 'greedy' in opts ? 1 : opts.temperature;
      const p = softmax(logits, T);
      const entropy = -p.reduce((h, pi) => h + pi * Math.log(pi), 0);
      for (let seed = 0; seed < 20; seed++) {
        const d = drawToken(logits, opts, new Prng(seed));
        expect(d.logProb).toBeCloseTo(Math.log(p[d.token]), 12);
        expect(d.entropy).toBeCloseTo(entropy, 12);
      }
    }
    expect(drawToken(logits, { greedy: true }, new Prng(0)).token).toBe(0);
  });

  it('top-p keeps the smallest most-probable set reaching p, renormalised', () => {
    const p = softmax(logits); // ≈ .575 .211 .128 .078 .029 .004
    const cut = (topP: number) => Array.from(samplingDistribution(logits, { topP })).map((x) => x > 0);
    expect(cut(0.5)).toEqual([true, false, false, false, false, false]);
    expect(cut(p[0])).toEqual([true, false, false, false, false, false]); // exactly reaching p stops
    expect(cut(p[0] + 1e-9)).toEqual([true, true, false, false, false, false]);
    expect(cut(0.9)).toEqual([true, true, true, true, false, false]);
    const d = samplingDistribution(logits, { topP: 0.8 });
    const kept = p[0] + p[1] + p[2];
    [0, 1, 2].forEach((i) => expect(d[i]).toBeCloseTo(p[i] / kept, 12));
    expect(samplingDistribution([1, 1, 1, 1], { topP: 0.5 })).toEqual(Float64Array.from([0.5, 0.5, 0, 0])); // ties: lower id first
  });

  it('min-p keeps tokens with probability >= minP * max, and composes with temperature and top-p', () => {
    const p = softmax(logits);
    const keep = (d: Float64Array) => Array.from(d).map((x) => x > 0);
    expect(keep(samplingDistribution(logits, { minP: p[2] / p[0] }))).toEqual([true, true, true, false, false, false]);
    expect(keep(samplingDistribution(logits, { minP: p[2] / p[0] + 1e-9 }))).toEqual([true, true, false, false, false, false]);
    const pt = softmax(logits, 2);
    expect(keep(samplingDistribution(logits, { temperature: 2, minP: pt[4] / pt[0] }))).toEqual([true, true, true, true, true, false]);
    expect(keep(samplingDistribution(logits, { minP: 0.1, topP: 0.7 }))).toEqual([true, true, false, false, false, false]);
    const d = samplingDistribution(logits, { minP: 0.3 });
    expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});

describe('generate', () => {
  it('decoder logits equal a full recompute at every step, with left padding and rows leaving, over 70 tokens', () => {
    const m = new Transformer(tinyConfig({ initStd: 0.5, contextLength: 80 }), new Prng(5));
    const before = tf.memory().numTensors;
    const { maxDiff, scale } = decoderDeviation(m, 'append', 70);
    expect(tf.memory().numTensors).toBe(before + 1); // the causal mask m.forward keeps: no cache left behind
    expect(maxDiff).toBeLessThan(1e-5 * scale); // float32 rounding, relative to the logits' size
    m.dispose();
  });

  it('decoder logits of whole sequences (scoring) equal the training forward pass', () => {
    const m = new Transformer(tinyConfig({ initStd: 0.5, contextLength: 40 }), new Prng(6));
    const rng = new Prng(3);
    const tokens = tf.tensor2d(
      Array.from({ length: 3 }, () => Array.from({ length: 40 }, () => 6 + rng.int(95))),
      undefined,
      'int32',
    );
    const decoder = new Decoder(m);
    const [got, want] = [decoder.logits(tokens), m.forward(tokens)];
    const scale = want.abs().max().dataSync()[0];
    expect(got.shape).toEqual(want.shape);
    expect(got.sub(want).abs().max().dataSync()[0]).toBeLessThan(1e-5 * scale);
    tf.dispose([got, want, tokens]);
    decoder.dispose();
    m.dispose();
  });

  it('reports log-probs and entropies of softmax(z / T), untruncated, equal to a full forward pass scored at T', async () => {
    const m = model();
    const prompts = [
      [BOS, 20, 21, 22],
      [BOS, 30],
    ];
    const out = await generate(m, prompts, { maxNewTokens: 6, temperature: 1.3, topP: 0.9 }, new Prng(3));
    for (let b = 0; b < 2; b++) {
      const seq = [...prompts[b], ...out[b].tokens];
      const { logProbs, entropies } = scoreTokens(
        m,
        tf.tensor2d([seq.slice(0, -1)], undefined, 'int32'),
        tf.tensor2d([seq.slice(1)], undefined, 'int32'),
        1.3,
      );
      const lp = Array.from(logProbs.dataSync()).slice(prompts[b].length - 1);
      const h = Array.from(entropies.dataSync()).slice(prompts[b].length - 1);
      out[b].logProbs.forEach((x, i) => expect(x).toBeCloseTo(lp[i], 4));
      out[b].entropies.forEach((x, i) => expect(x).toBeCloseTo(h[i], 4));
      tf.dispose([logProbs, entropies]);
    }
    m.dispose();
  });

  it('batched greedy generation of ragged prompts equals one prompt at a time', async () => {
    const m = model();
    const prompts = [
      [BOS, 40, 41, 42, 43, 44],
      [BOS, 50],
      [BOS, 60, 61, 62],
    ];
    const together = await generate(m, prompts, { maxNewTokens: 8, greedy: true }, new Prng(0));
    for (let b = 0; b < prompts.length; b++) {
      const [alone] = await generate(m, [prompts[b]], { maxNewTokens: 8, greedy: true }, new Prng(0));
      expect(together[b].tokens).toEqual(alone.tokens);
    }
    m.dispose();
  });

  it('rows that finish early leave the batch without changing any other row (one stream per row)', async () => {
    const m = model();
    const prompts = Array.from({ length: 24 }, (_, b) => [BOS, 6 + (b % 7), 20 + (b % 5)].slice(0, 2 + (b % 2)));
    const streams = () => prompts.map((_, b) => new Prng(100 + b));
    const opts = { maxNewTokens: 20, temperature: 2 };
    const together = await generate(m, prompts, opts, streams());
    const lengths = together.map((s) => s.tokens.length);
    expect(Math.min(...lengths)).toBeLessThan(10); // rows end at different steps: the batch is compacted on the way
    expect(Math.max(...lengths)).toBe(20);
    for (let b = 0; b < prompts.length; b++) {
      const [alone] = await generate(m, [prompts[b]], opts, [new Prng(100 + b)]);
      expect(together[b].tokens).toEqual(alone.tokens);
      together[b].logProbs.forEach((x, i) => expect(x).toBeCloseTo(alone.logProbs[i], 4));
    }
    m.dispose();
  });

  it('first-token frequencies through generate match softmax(logits / T) of the model', async () => {
    const m = model();
    const prompt = [BOS, 33, 34];
    const T = 1.5;
    const logits = Array.from(tf.tidy(() => m.forward(tf.tensor2d([prompt], undefined, 'int32')).dataSync()).slice(2 * 101, 3 * 101));
    const n = 4000;
    const out = await generate(m, new Array(n).fill(prompt), { maxNewTokens: 1, temperature: T }, new Prng(4));
    const counts = new Array(101).fill(0);
    out.forEach((s) => counts[s.tokens[0]]++);
    const [stat, dof] = chiSquare(counts, softmax(logits, T), n);
    expect(stat).toBeLessThan(critical(dof));
    m.dispose();
  });

  it('is deterministic by seed', async () => {
    const m = model();
    const prompts = [
      [BOS, 7, 8],
      [BOS, 9],
    ];
    const opts = { maxNewTokens: 10, temperature: 1.2 };
    const a = await generate(m, prompts, opts, new Prng(9));
    expect(await generate(m, prompts, opts, new Prng(9))).toEqual(a);
    const c = await generate(m, prompts, opts, new Prng(10));
    expect(c.map((s) => s.tokens)).not.toEqual(a.map((s) => s.tokens));
    m.dispose();
  });

  it('stops at EOS (stopped) or at maxNewTokens (cut)', async () => {
    const m = model();
    const out = await generate(m, new Array(200).fill([BOS, 11]), { maxNewTokens: 20, temperature: 2 }, new Prng(6));
    for (const s of out) {
      expect(s.logProbs).toHaveLength(s.tokens.length);
      expect(s.entropies).toHaveLength(s.tokens.length);
      expect(s.stopped).toBe(s.tokens.at(-1) === EOS);
      expect(s.tokens.slice(0, -1)).not.toContain(EOS);
      if (!s.stopped) expect(s.tokens).toHaveLength(20);
    }
    expect(out.some((s) => s.stopped)).toBe(true);
    expect(out.some((s) => !s.stopped)).toBe(true);
    m.dispose();
  });

  it('cuts a sequence when the context is full', async () => {
    const m = model(); // contextLength 24
    const prompt = Array.from({ length: 20 }, (_, i) => 6 + i);
    const [s] = await generate(m, [prompt], { maxNewTokens: 50, greedy: true }, new Prng(0));
    if (!s.stopped) expect(prompt.length + s.tokens.length).toBe(25); // the last token is predicted from position 23
    const [full, short] = await generate(m, [prompt, [BOS]], { maxNewTokens: 15, greedy: true }, new Prng(0));
    if (!full.stopped) expect(full.tokens).toHaveLength(5); // cut by the context while the other row goes on
    if (!short.stopped) expect(short.tokens).toHaveLength(15);
    await expect(generate(m, [new Array(25).fill(6)], { maxNewTokens: 1 }, new Prng(0))).rejects.toThrow(/25 tokens/);
    m.dispose();
  });

  it('leaves no tensors behind', async () => {
    const m = model();
    await generate(m, [[BOS, 5]], { maxNewTokens: 3 }, new Prng(0));
    await expectNoLeak(() => generate(m, [[BOS, 5, 6], [BOS]], { maxNewTokens: 12, temperature: 0.8, minP: 0.05 }, new Prng(1)));
    m.dispose();
  });
});
