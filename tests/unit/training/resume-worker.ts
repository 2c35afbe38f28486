/**
 * Spawned by resume.test.ts, one training segment per process:
 *   <backend> straight <steps>            train from scratch, print the final state's sha256
 *   <backend> first <steps> <file>        train from scratch, save the state to file
 *   <backend> resume <steps> <file>       load the state from file, train on, print sha256
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { initBackend } from '../../../model/backend';
import { decodeState, encodeState } from '../../../model/state';
import { SftTrainer } from '../../../training/sft';
import { reverseExamples, smallConfig } from './toy';

const [backend, mode, steps, file] = process.argv.slice(2);
await initBackend(backend);
const train = reverseExamples(40, 1); // 5 batches per epoch: the runs cross epoch boundaries
const sft = { batchSize: 8, microBatchSize: 4, lr: 3e-3, minLr: 1e-4, warmupSteps: 3, steps: 12, weightDecay: 0.1 };
const trainer =
  mode === 'resume'
    ? SftTrainer.fromState(decodeState(readFileSync(file)), sft, train)
    : SftTrainer.create(smallConfig({ dModel: 16, nLayers: 1 }), sft, train, 7);
for (let i = 0; i < Number(steps); i++) trainer.trainStep();
const bytes = encodeState(trainer.state());
if (mode === 'first') writeFileSync(file, bytes);
process.stdout.write(JSON.stringify({ step: trainer.step, sha256: createHash('sha256').update(bytes).digest('hex') }) + '\n');
