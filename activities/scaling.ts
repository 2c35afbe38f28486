/**
 * Inference-scaling points as activities on the eval queue, one per (checkpoint, budget), cached in
 * S3 by (checkpoint content sha256, evaluation-config hash): an identical request loads no model
 * and generates nothing. Cache objects are written once (If-None-Match) and never overwritten.
 */
import { SAMPLE_STREAMS } from '../evaluation/evaluate';
import { inferenceScaling } from '../evaluation/scaling';
import { Transformer } from '../model/transformer';
import { EVAL_CACHE_PREFIX } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';
import { heldOutSpec } from '../rules/campaign';
import { scalingCacheKey } from '../rules/checkpoints';
import { heldOut } from '../tasks/dataset';
import { hashOf } from '../util/hash';
import type { ScalingActivities, ScalingInput, ScalingPoint } from '../contracts/campaign';
import type { ModelCache } from '../model/cache';
import { publishWeights, type WeightsRef } from '../storage/weights';
import { heartbeat, type StageContext } from './context';

export function scalingActivities(ctx: StageContext, models: ModelCache): ScalingActivities {
  const { store, backend, cache } = ctx;
  async function modelOf(checkpoint: CheckpointRef) {
    const { config, weights } = await cache.state(checkpoint);
    return new Transformer(config, weights);
  }

  return {
    /**
     * Publishes a checkpoint's weights for its scaling points, once: eval workers then load the
     * weights alone (not the optimizer state) and keep each model for all their points.
     */
    async publishWeights(input: { checkpoint: CheckpointRef }): Promise<WeightsRef> {
      return publishWeights(store, await cache.state(input.checkpoint));
    },

    async scalingPoint(input: ScalingInput): Promise<ScalingPoint> {
      const { config, checkpoint, budget } = input;
      const s = config.eval.scaling;
      const key = `${EVAL_CACHE_PREFIX}/${scalingCacheKey(hashOf, config, budget, { model: checkpoint.sha256, backend, streams: SAMPLE_STREAMS })}`;
      const hit = await store.getJson<Omit<ScalingPoint, 'label' | 'checkpoint'>>(key);
      if (hit) {
        return { label: input.label, checkpoint, ...hit, cached: true };
      }
      const file = await ctx.loadTask(config);
      // Published weights are shared with other points (and rollouts); gone (removed by gc): the checkpoint's own.
      const shared = input.weights && (await models.find(input.weights));
      const model = shared || (await modelOf(checkpoint));
      try {
        const problems = heldOut({ ...heldOutSpec(config), file }, 'test', s.problems);
        const report = await inferenceScaling(model, problems, {
          budgets: budget === null ? [] : [budget],
          samples: s.samples,
          temperature: s.temperature,
          maxNewTokens: config.eval.maxNewTokens,
          answerTokens: s.answerTokens,
          batchSize: config.eval.batchSize,
          seed: config.eval.seed,
          garbage: config.rl.garbage,
          onProgress: (_phase, done, total) => heartbeat({ step: done, total }),
        });
        const p = report.points[0];
        const point = {
          budget: p.budget,
          untruncated: p.untruncated,
          accuracy: p.metrics.passAt1,
          forced: p.forced,
          meanLength: p.metrics.meanLength,
          meanSteps: p.metrics.meanSteps,
          ...(budget === null ? { steps: report.steps, medianReasoning: report.medianReasoning } : {}),
          correct: p.problems.map((r) => r.samples.filter((x) => x.correct).length),
          samples: s.samples,
          cached: false,
        };
        await store.putJsonOnce(key, point);
        return { label: input.label, checkpoint, ...point };
      } finally {
        if (!shared) model.dispose();
      }
    },
  };
}
