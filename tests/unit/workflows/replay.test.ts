import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../../../workers/worker';

// Histories recorded from campaigns of earlier workflow code (tests/fixtures/record-histories.ts).
const DIR = fileURLToPath(new URL('../../fixtures/histories/', import.meta.url));
const histories = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({
    workflowId: f.replace(/\.json$/, ''),
    history: proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(DIR, f), 'utf8'))),
  }));

describe('recorded campaign histories', () => {
  it("replay against today's workflow code (a change that breaks them needs patched())", async () => {
    expect(histories.length).toBeGreaterThanOrEqual(2);
    const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories);
    for await (const r of results) expect(r.error, r.workflowId).toBeUndefined();
  });

  it('fail to replay against workflow code whose command sequence changed without a patch', async () => {
    const changed = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../../fixtures/changed-workflow.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    });
    await expect(Worker.runReplayHistory({ workflowBundle: changed }, histories[0].history, histories[0].workflowId)).rejects.toMatchObject(
      { name: 'DeterminismViolationError' },
    );
  });
});
