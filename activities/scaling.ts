/**
 * Inference-scaling points as activities on the eval queue, one per (checkpoint, budget), cached in
 * S3 by (checkpoint content sha256, evaluation-config hash): an identical request loads no model
 * and generates nothing. Cache objects are written once (If-None-Match) and never overwritten.
 */
import type { CampaignConfig } from '../config/campaign';
import type { Grants, WorkerAccess } from '../config/grants';
import { SAMPLE_STREAMS } from '../evaluation/evaluate';
import { inferenceScaling } from '../evaluation/scaling';
import { Transformer } from '../model/transformer';
import { EVAL_CACHE_PREFIX, type CheckpointStore } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';
import { heldOutSpec } from '../rules/campaign';
import { heldOut } from '../tasks/dataset';
import { loadTaskData } from '../tasks/task-file';
import { hashOf } from '../util/hash';
import type { ScalingPoint } from '../contracts/campaign';
import { publishWeights, type ModelCache, type WeightsRef } from '../storage/weights';
import type { CheckpointCache } from './cache';
import { activityScope } from './scope';

export interface ScalingInput {
  campaignId: string;
  config: CampaignConfig;
  checkpoint: CheckpointRef;
  label: string;
  /** Reasoning budget in tokens; null: the untruncated run. */
  budget: number | null;
  /** The checkpoint's weights as published by publishWeights (absent in campaigns started before it). */
  weights?: WeightsRef;
}

export function scalingActivities(store: CheckpointStore, cache: CheckpointCache, models: ModelCache, grants: Grants) {
  const access: WorkerAccess = { grants, checkpointBucket: store.bucket };
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
      const evalConfig = {
        task: config.task,
        seed: config.eval.seed,
        problems: s.problems,
        samples: s.samples,
        temperature: s.temperature,
        maxNewTokens: config.eval.maxNewTokens,
        answerTokens: s.answerTokens,
        garbage: config.rl.garbage,
        budget,
        streams: SAMPLE_STREAMS,
        // 2: points carry per-problem counts and the median reasoning length.
        record: 2,
      };
      const key = `${EVAL_CACHE_PREFIX}/${checkpoint.sha256}/${hashOf(evalConfig)}.json`;
      const hit = await store.getJson<Omit<ScalingPoint, 'label' | 'checkpoint'>>(key);
      if (hit) {
        return { label: input.label, checkpoint, ...hit, cached: true };
      }
      await loadTaskData(config.task, store.client, access);
      // Published weights are shared with other points (and rollouts); gone (removed by gc): the checkpoint's own.
      const shared = input.weights && (await models.find(input.weights));
      const model = shared || (await modelOf(checkpoint));
      try {
        const problems = heldOut(heldOutSpec(config), 'test', s.problems);
        const report = await inferenceScaling(model, problems, {
          budgets: budget === null ? [] : [budget],
          samples: s.samples,
          temperature: s.temperature,
          maxNewTokens: config.eval.maxNewTokens,
          answerTokens: s.answerTokens,
          batchSize: config.eval.batchSize,
          seed: config.eval.seed,
          garbage: config.rl.garbage,
          onProgress: (_phase, done, total) => activityScope().heartbeat({ step: done, total }),
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
export type ScalingActivities = ReturnType<typeof scalingActivities>;
