import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { installRuntime, workflowBundle } from '../../../workers/worker';

installRuntime(); // the SDK's log at WARN: each replay worker would log its start and stop

// Histories recorded from earlier workflow code (`npm run record-histories`, tests/fixtures/record-histories.ts).
const DIR = fileURLToPath(new URL('../../fixtures/histories/', import.meta.url));
const histories = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const history = proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(DIR, f), 'utf8')));
    const started = history.events![0].workflowExecutionStartedEventAttributes!;
    // A run that continue-as-new started begins without synthesis and SFT: a history of its own kind.
    const kind = `${started.workflowType!.name}${started.continuedExecutionRunId ? ' (continued)' : ''}`;
    // Replayed under the recorded id: the scheduled workflow names its child campaign after its own.
    return { file: f, workflowId: started.workflowId!, history, kind };
  });

/** The patch ids whose markers a history records (patched() returned true when it ran). */
const patchesIn = (h: proto.temporal.api.history.v1.IHistory) =>
  h.events!.flatMap((e) => {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [JSON.parse(Buffer.from(data).toString('utf8')).id as string] : [];
  });

// Every patched() id in the workflow code: each needs a history recorded through its branch.
const WORKFLOWS = fileURLToPath(new URL('../../../workflows/', import.meta.url));
const patchIds = readdirSync(WORKFLOWS).flatMap((f) =>
  [...readFileSync(join(WORKFLOWS, f), 'utf8').matchAll(/\bpatched\('([^']+)'\)/g)].map((m) => m[1]),
);

/** Each kind of history, and where the changed variant of its workflow (tests/fixtures/changed-workflow.ts) departs from it. */
const KINDS: Record<string, RegExp> = {
  campaignWorkflow: /activity type of scheduled event 'synthesize' does not match activity type of activity command 'evaluate'/i,
  'campaignWorkflow (continued)': /activity type of scheduled event 'rlEpoch' does not match activity type of activity command 'evaluate'/i,
  scheduledCampaignWorkflow: /child workflow machine does not handle this event.*ActivityTaskScheduled/is,
  reproduceWorkflow: /child workflow machine does not handle this event.*ActivityTaskScheduled/is,
  rolloutWorkflow: /timer machine does not handle this event.*ActivityTaskScheduled/is,
  proofWorkflow: /timer machine does not handle this event.*ActivityTaskScheduled/is,
};

describe('recorded workflow histories', () => {
  it('cover every workflow type, a continued campaign run and each patched() branch', () => {
    expect(new Set(histories.map((h) => h.kind))).toEqual(new Set(Object.keys(KINDS)));
    expect(patchIds.sort()).toEqual(['published-weights', 'reproduction-records', 'rl-filter']);
    expect(new Set(histories.flatMap((h) => patchesIn(h.history)))).toEqual(new Set(patchIds));
  });

  it("replay against today's workflow code (a change that breaks them needs patched())", async () => {
    const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories);
    let replayed = 0;
    // One result per history, in order.
    for await (const r of results) expect(r.error, histories[replayed++].file).toBeUndefined();
    expect(replayed).toBe(histories.length);
  });

  it('fail to replay, each at its changed command, against workflow code whose command sequence changed without a patch', async () => {
    const changed = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../../fixtures/changed-workflow.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    });
    const results = Worker.runReplayHistories({ workflowBundle: changed }, histories);
    let replayed = 0;
    for await (const r of results) {
      const { file, kind } = histories[replayed++];
      expect(r.error, file).toMatchObject({ name: 'DeterminismViolationError', message: expect.stringMatching(KINDS[kind]) });
    }
    expect(replayed).toBe(histories.length);
  });
});
