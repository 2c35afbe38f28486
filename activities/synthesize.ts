/**
 * The first stage: the config's task file pinned (a schedule's campaign starts without), and the
 * SFT traces synthesized by the teacher and committed as the campaign's dataset checkpoint.
 */
import type { CampaignConfig } from '../config/campaign';
import { refOf, type CheckpointRef } from '../storage/manifest';
import { datasetSpec } from '../rules/campaign';
import { datasetHash, datasetId } from '../rules/checkpoints';
import { synthesizeWithTeacher } from '../tasks/dataset';
import { pinTaskFile } from '../config/task-file';
import { hashOf } from '../util/hash';
import { heartbeat, namingField, utf8, type StageContext } from './context';

export function synthesisActivities({ store, access, loadTask }: StageContext) {
  return {
    /** The config with its jsonl file pinned (sha256, extra characters), for a campaign started without (by a schedule): refused when the file cannot serve it. */
    async pinTask(input: { config: CampaignConfig }): Promise<CampaignConfig> {
      return pinTaskFile(input.config, access, store.client);
    },

    async synthesize(input: { campaignId: string; config: CampaignConfig }): Promise<CheckpointRef> {
      const spec = { ...datasetSpec(input.config), file: await loadTask(input.config) };
      // An endpoint teacher's answers are cached as they come: a retry after a crash asks only what was not answered.
      let progress: Record<string, unknown> = { step: 0, total: spec.examples };
      const beat = setInterval(() => heartbeat(progress), 5000);
      try {
        const { examples, stats, teacher, jsonl } = await namingField('data.sftExamples', () =>
          synthesizeWithTeacher(spec, {
            access,
            cache: store,
            extraChars: input.config.model.extraChars,
            onTeacherProgress: (t) => (progress = { step: t.accepted, total: spec.examples, teacher: { ...t } }),
          }),
        );
        heartbeat({ step: examples.length, total: spec.examples });
        const { manifest } = await store.commit(
          {
            id: datasetId(input.campaignId),
            kind: 'dataset',
            configHash: datasetHash(hashOf, input.config),
            backend: 'none',
            meta: { ...stats, ...(teacher && { teacher }) },
          },
          { 'sft.jsonl': utf8(jsonl) },
        );
        return refOf(manifest);
      } finally {
        clearInterval(beat);
      }
    },
  };
}
