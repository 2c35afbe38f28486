/**
 * A sampler process (see rl/sampler-pool.ts): loads the backend its parent names (T1_BACKEND),
 * holds the latest policy and anchor weights it was sent, and samples the shards (with the policy)
 * and scores the micro-batches (with the anchor) it is given, one at a time. It exits when the
 * parent goes away.
 */
import { initBackend } from '../model/backend';
import { Transformer } from '../model/transformer';
import { responseLogProbs } from './loss';
import { sampleRollouts } from './rollout';
import type { FromSampler, ToSampler } from './sampler-pool';

const send = (m: FromSampler) => process.send!(m);
const models: Partial<Record<'policy' | 'anchor', Transformer>> = {};

const loaded = (role: 'policy' | 'anchor') => {
  const model = models[role];
  if (!model) throw new Error(`no ${role} weights before its first task`);
  return model;
};

process.on('message', async (m: ToSampler) => {
  if (m.type === 'weights') {
    models[m.role]?.dispose();
    models[m.role] = new Transformer(m.config, m.weights);
    return;
  }
  try {
    const result =
      m.type === 'sample'
        ? await sampleRollouts(loaded('policy'), m.batch)
        : responseLogProbs(loaded('anchor'), m.seqs, m.seqs.length, m.temperature); // one chunk: the same micro-batch
    send({ type: 'done', id: m.id, result });
  } catch (err) {
    send({ type: 'failed', id: m.id, message: (err as Error).message });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', backend: (await initBackend()).name });
