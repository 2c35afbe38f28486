/**
 * Time-boxed learning runs for the closing notes, outside Temporal: one JSON line per eval point.
 *
 *   npx tsx bench/runs.ts sft --preset quick --set '{"task":...}' --minutes 15 --save sft.bin
 *   npx tsx bench/runs.ts rl  --preset quick --set '{"rl":...}' --from sft.bin --minutes 15 [--steps 60]
 *
 * sft: calibrates steps/s on a throwaway trainer, sizes the cosine schedule to fill the training
 * budget, then reports validation loss and greedy exact match; evaluation time is excluded from
 * the budget. rl: RL steps from a saved SFT state until the budget is spent, each step's metrics,
 * and the validation sweep every `--eval-every` steps. These runs tune presets, so they read the
 * validation split only: test accuracy is the campaign's to report.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { anchorRefreshDue, datasetSpec, decodeSettings, heldOutSpec, promptSource, sweepSettings } from '../rules/campaign';
import { resolveConfig } from '../config/presets';
import { greedyAccuracy } from '../evaluation/accuracy';
import { chooseSetting, temperatureSweep } from '../evaluation/sweep';
import type { Policy } from '../model/policy';
import { initBackend } from '../model/backend';
import { decodeState, encodeState } from '../model/state';
import { buildExample } from '../model/tokenizer';
import { Transformer } from '../model/transformer';
import { copyPolicyToAnchor } from '../rl/anchor';
import { RlTrainer } from '../rl/epoch';
import { heldOut, synthesizeSft, validationTraces } from '../tasks/dataset';
import { SftTrainer } from '../training/sft';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    preset: { type: 'string', default: 'quick' },
    set: { type: 'string' },
    minutes: { type: 'string', default: '15' },
    evals: { type: 'string', default: '6' },
    'eval-every': { type: 'string', default: '10' },
    /** rl: stop after this many steps (default: when --minutes are spent), so arms compare at equal steps. */
    steps: { type: 'string' },
    val: { type: 'string', default: '500' },
    save: { type: 'string' },
    from: { type: 'string' },
  },
});
const mode = positionals[0];
if (mode !== 'sft' && mode !== 'rl') throw new Error('usage: runs.ts sft|rl [options]');
const backend = await initBackend();
const config = resolveConfig({ preset: values.preset, overrides: values.set ? JSON.parse(values.set) : undefined });
const budget = Number(values.minutes) * 60;
const spec = datasetSpec(config);
const sweepVal = heldOut(heldOutSpec(config), 'val', Number(values.val));
/** The validation sweep, read at its best setting, and greedy beside it. */
async function validation(model: Policy) {
  const settings = await temperatureSweep(model, sweepVal, sweepSettings(config, 'val'));
  const best = settings.find((s) => s.temperature === chooseSetting(settings))!;
  return {
    valProblems: sweepVal.length,
    valTemperature: best.temperature,
    valAccuracy: r4(best.metrics.passAt1),
    valGreedy: r4(settings[0].metrics.passAt1),
    valGarbage: r4(best.metrics.garbageRate),
    // Capability beside it: the best pass@n over the temperatures (n = the sweep's samples).
    valPassAtN: r4(Math.max(...settings.slice(1).map((s) => s.metrics.passAtK[String(s.metrics.samples)]))),
    meanLength: r4(best.metrics.meanLength),
  };
}
const emit = (o: object) => console.log(JSON.stringify({ mode, backend: backend.name, ...o }));
const now = () => performance.now() / 1000;
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

if (mode === 'sft') {
  const train = (await synthesizeSft(spec)).examples.map(buildExample);
  const val = heldOut(heldOutSpec(config), 'val', config.data.valProblems);
  const valExamples = validationTraces(spec, val).map(({ problem, trace }) => buildExample({ prompt: problem.prompt, ...trace }));
  const greedy = (m: Transformer) => greedyAccuracy(m, val, decodeSettings(config));
  // Calibrate: 5 warm-up steps (kernels, allocator), then time 20.
  const probe = SftTrainer.create(config.model, config.sft, train, config.seed);
  for (let i = 0; i < 5; i++) probe.trainStep();
  let t = now();
  for (let i = 0; i < 20; i++) probe.trainStep();
  const rate = 20 / (now() - t);
  const params = probe.model.paramCount();
  probe.model.dispose();
  const steps = Math.max(10, Math.floor(rate * budget));
  const cfg = { ...config, sft: { ...config.sft, steps } };
  emit({ event: 'plan', task: config.task, model: config.model, params, stepsPerS: r4(rate), steps, examples: train.length });
  const sft = SftTrainer.create(config.model, cfg.sft, train, config.seed);
  const every = Math.ceil(steps / Number(values.evals));
  let trainS = 0;
  let lossSum = 0;
  for (let s = 1; s <= steps; s++) {
    t = now();
    lossSum += sft.trainStep().loss;
    trainS += now() - t;
    if (s % every === 0 || s === steps) {
      const acc = await greedy(sft.model);
      emit({
        event: 'eval',
        step: s,
        trainMinutes: r4(trainS / 60),
        trainLoss: r4(lossSum / (s % every || every)),
        valLoss: r4(sft.validationLoss(valExamples)),
        valAccuracy: r4(acc.passAt1),
        valGarbage: r4(acc.garbageRate),
      });
      lossSum = 0;
    }
  }
  emit({ event: 'final', steps, trainMinutes: r4(trainS / 60), ...(await validation(sft.model)) });
  if (values.save) writeFileSync(values.save, encodeState(sft.state()));
} else {
  if (!values.from) throw new Error('rl needs --from SFT_STATE');
  const state = decodeState(new Uint8Array(readFileSync(values.from)));
  const source = promptSource(config);
  const trainer = RlTrainer.create(
    new Transformer(state.config, state.weights),
    new Transformer(state.config, state.weights),
    config.rl,
    source,
    config.seed,
  );
  const evalEvery = Number(values['eval-every']);
  const evaluate = async (step: number, trainS: number) => {
    emit({ event: 'eval', step, trainMinutes: r4(trainS / 60), ...(await validation(trainer.policy)) });
  };
  const { promptsPerStep: B, samplesPerPrompt: K, temperature, lr, stepsPerEpoch } = config.rl;
  emit({ event: 'plan', B, K, temperature, lr, stepsPerEpoch, anchor: config.rl.anchor });
  await evaluate(0, 0);
  let trainS = 0;
  let step = 0;
  const maxSteps = values.steps === undefined ? Infinity : Number(values.steps);
  while (trainS < budget && step < maxSteps) {
    const t = now();
    const m = await trainer.step();
    step++;
    // A run on a time budget has no last epoch: the anchor refreshes at every due epoch boundary.
    if (step % stepsPerEpoch === 0 && anchorRefreshDue({ ...config.rl, epochs: Infinity }, step / stepsPerEpoch))
      copyPolicyToAnchor(trainer.anchor, trainer.policy);
    trainS += now() - t;
    emit({
      event: 'step',
      step,
      trainMinutes: r4(trainS / 60),
      reward: r4(m.reward),
      accuracy: r4(m.accuracy),
      kl: r4(m.kl),
      entropy: r4(m.entropy),
      garbage: r4(m.garbageRate),
      length: r4(m.responseLength),
      zeroVar: r4(m.zeroVarianceGroups),
      difficulty: r4(m.difficulty),
      klPenalty: r4(m.klPenalty),
      rewardSpread: r4(m.rewardSpread),
      pgNorm: r4(m.pgNorm),
      entropyNorm: r4(m.entropyNorm),
      gradNorm: r4(m.gradNorm),
      lr: m.lr,
      seconds: r4(now() - t),
    });
    if (step % evalEvery === 0) await evaluate(step, trainS);
  }
  if (step % evalEvery !== 0) await evaluate(step, trainS);
}
