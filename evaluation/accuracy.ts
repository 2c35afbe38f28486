/**
 * Held-out accuracy of a model: greedy decoding of each problem's prompt, judged exactly as RL
 * rewards are (answer line through the task's verifier; garbage by the same rules).
 */
import { generate } from '../model/sample';
import { encodePrompt } from '../model/tokenizer';
import type { Transformer } from '../model/transformer';
import { judge } from '../rl/reward';
import type { RlConfig } from '../rl/config';
import type { Problem } from '../tasks/types';
import { Prng } from '../util/prng';

export interface AccuracyResult {
  accuracy: number;
  n: number;
  garbageRate: number;
  /** Mean response length in tokens. */
  meanLength: number;
}

export async function heldOutAccuracy(
  model: Transformer,
  problems: readonly Problem[],
  opts: { maxNewTokens: number; batchSize: number; garbage: RlConfig['garbage']; onBatch?: (done: number, total: number) => void | Promise<void> },
): Promise<AccuracyResult> {
  if (!problems.length) throw new Error('heldOutAccuracy: no problems');
  // Greedy decoding draws no randomness; the Prng only satisfies the sampler's signature.
  const rng = new Prng(0);
  let correct = 0;
  let garbage = 0;
  let length = 0;
  for (let i = 0; i < problems.length; i += opts.batchSize) {
    const chunk = problems.slice(i, i + opts.batchSize);
    const outs = await generate(model, chunk.map((p) => encodePrompt(p.prompt)), { maxNewTokens: opts.maxNewTokens, greedy: true }, rng);
    outs.forEach((o, j) => {
      const v = judge(chunk[j], o.tokens, opts.garbage);
      correct += v.correct ? 1 : 0;
      garbage += v.garbage ? 1 : 0;
      length += o.tokens.length;
    });
    await opts.onBatch?.(Math.min(i + opts.batchSize, problems.length), problems.length);
  }
  const n = problems.length;
  return { accuracy: correct / n, n, garbageRate: garbage / n, meanLength: length / n };
}
