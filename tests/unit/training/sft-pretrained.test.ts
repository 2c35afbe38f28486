/**
 * SFT of a pretrained base's LoRA adapters in its chat format (model/chat-policy.ts): the loss is the
 * assistant's tokens only, dropout masks come from the trainer's own stream, and a run resumed from
 * its state continues bit for bit, dropout included.
 */
import { describe, expect, it } from 'vitest';
import { ChatFormat } from '../../../formats/chat-format';
import { loadPretrained } from '../../../formats/pretrained';
import { ChatPolicy } from '../../../model/chat-policy';
import { Llama } from '../../../model/llama';
import { initLoraWeights } from '../../../model/lora';
import { LoraConfigSchema } from '../../../model/lora-config';
import { encodeState, decodeAnyState } from '../../../model/state';
import { SftTrainer } from '../../../training/sft';
import { Prng } from '../../../util/prng';
import { useBackend } from '../model/helpers';

useBackend();

const base = loadPretrained('tests/fixtures/pretrained/llama-tied');
const format = new ChatFormat(base.tokenizer, 'Answer.');
const lora = LoraConfigSchema.parse({ rank: 2, alpha: 4, dropout: 0.2, targets: ['q', 'v', 'down'] });
const origin = { base: { uri: 'tests/fixtures/pretrained/llama-tied', sha256: '0'.repeat(64) }, lora };
const traces = Array.from({ length: 6 }, (_, i) => ({
  prompt: `${i} + ${i + 1}`,
  reasoning: `try ${i}+${i + 1}=${2 * i}\nno: ${2 * i} != ${2 * i + 1}\n`,
  answer: `${2 * i + 1}`,
  verification: `\nchk ${i}+${i + 1}=${2 * i + 1} ok`,
}));
const train = traces.map((t) => format.buildExample(t));
const config = { steps: 5, batchSize: 2, lr: 1e-2, warmupSteps: 0 };

function policy(adapters = initLoraWeights(base.config, lora, new Prng(3))) {
  return new ChatPolicy(new Llama(base.config, base.weights, { config: lora, weights: adapters }), format, base.tokenizer.eosId, origin);
}

describe('SFT of LoRA adapters on a pretrained base', () => {
  it('trains the adapters only, on the assistant tokens; resumes bit for bit with dropout', () => {
    // The loss mask covers the reply and the end token, not the rendered system and user turns.
    const ex = train[0];
    const prompt = format.encodePrompt(traces[0].prompt);
    expect(ex.lossMask.slice(0, prompt.length).every((m) => m === 0)).toBe(true);
    expect(ex.lossMask.slice(prompt.length).every((m) => m === 1)).toBe(true);
    expect(ex.tokens.at(-1)).toBe(base.tokenizer.eosId);

    const straight = SftTrainer.start(policy(), config, train, 7);
    const losses = Array.from({ length: 5 }, () => straight.trainStep().loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    const end = straight.state();
    expect(Object.keys(end.weights).every((n) => /\.lora_[ab]$/.test(n))).toBe(true);
    expect(end.extra).toMatchObject({ origin });

    const first = SftTrainer.start(policy(), config, train, 7);
    for (let i = 0; i < 3; i++) first.trainStep();
    const saved = decodeAnyState(encodeState(first.state()));
    first.dispose();
    const resumed = SftTrainer.fromState(saved, config, train, policy(saved.weights));
    expect([resumed.trainStep().loss, resumed.trainStep().loss]).toEqual(losses.slice(3));
    expect(encodeState(resumed.state())).toEqual(encodeState(end));
    resumed.dispose();

    // Dropout draws from the trainer's stream: the same run without it learns something else (from the
    // second step: B starts at zero, so the adapters' dropped-out inputs weigh nothing in the first).
    const noDropout = new ChatPolicy(
      new Llama(base.config, base.weights, { config: { ...lora, dropout: 0 }, weights: initLoraWeights(base.config, lora, new Prng(3)) }),
      format,
      base.tokenizer.eosId,
      origin,
    );
    const plain = SftTrainer.start(noDropout, config, train, 7);
    expect(plain.trainStep().loss).toBe(losses[0]);
    expect(plain.trainStep().loss).not.toBe(losses[1]);
    plain.dispose();
    straight.dispose();
  });
});
