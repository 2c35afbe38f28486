/**
 * A sampler process (see rl/sampler-pool.ts): loads the backend its parent names (T1_BACKEND),
 * holds the latest weights it was sent, and samples the shards it is given, one at a time. It
 * exits when the parent goes away.
 */
import { initBackend } from '../model/backend';
import { Transformer } from '../model/transformer';
import { sampleRollouts } from './rollout';
import type { FromSampler, ToSampler } from './sampler-pool';

const send = (m: FromSampler) => process.send!(m);
let model: Transformer | null = null;

process.on('message', async (m: ToSampler) => {
  if (m.type === 'weights') {
    model?.dispose();
    model = new Transformer(m.config, m.weights);
    return;
  }
  try {
    if (!model) throw new Error('no weights before the first shard');
    send({ type: 'done', id: m.id, samples: await sampleRollouts(model, m.batch) });
  } catch (err) {
    send({ type: 'failed', id: m.id, message: (err as Error).message });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', backend: (await initBackend()).name });
