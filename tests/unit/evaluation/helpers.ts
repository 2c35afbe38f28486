import { modelConfig } from '../../../model/config';
import { ANS, EOS, VOCAB_SIZE } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { DEFAULT_SPLITS } from '../../../tasks/splits';
import { heldOut } from '../../../tasks/dataset';
import type { Problem } from '../../../tasks/types';
import { Prng } from '../../../util/prng';

export const GARBAGE = { ngram: 8, maxRepeatFraction: 0.5 };

/**
 * A tiny random-init transformer whose logits get a constant boost for ANS and EOS (lnf channel 0
 * is pinned to 1 and feeds only those head entries), so responses end at varied natural lengths
 * well inside the context, with a random-walk reasoning before.
 */
export function endingModel(seed = 1, boost = { ans: 3, eos: 2 }): Transformer {
  const config = modelConfig({ contextLength: 64, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, tieEmbeddings: false, initStd: 0.3 });
  const init = new Transformer(config, new Prng(seed));
  const w = init.getWeights();
  init.dispose();
  w['lnf.g'][0] = 0;
  w['lnf.b'][0] = 1;
  w.head.fill(0, 0, VOCAB_SIZE); // row 0 of head [D, V]
  w.head[ANS] = boost.ans;
  w.head[EOS] = boost.eos;
  return new Transformer(config, w);
}

export function countdownProblems(n: number): Problem[] {
  return heldOut({ task: 'countdown', difficulty: { min: 3, max: 4 }, splits: DEFAULT_SPLITS, seed: 7 }, 'test', n);
}
