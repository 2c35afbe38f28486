import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadStack } from '../../config/connection';
import { stackDown, stackStatus, stackUp, StackError } from '../../infra/stack';

// A second stack of its own (ports apart from the shared test stack), so down/up can be exercised.
// Every port, s3's +10000 gRPC ports included, lies below Linux's ephemeral range (32768-60999):
// a port there can be taken at random by any outgoing connection of the test run.
const stateDir = mkdtempSync(join(tmpdir(), 't1-stack-test-'));
const cfg = loadStack({
  'stack.stateDir': stateDir,
  'stack.temporalPort': '27233',
  'stack.temporalUiPort': '28233',
  'stack.s3Port': '22533',
});
afterAll(async () => {
  await stackDown(cfg);
  rmSync(stateDir, { recursive: true, force: true });
});

describe('t1 stack', () => {
  it('up starts both servers healthy on loopback; up twice is a no-op; down stops what up started', async () => {
    const st = await stackUp(cfg);
    expect(st.temporal).toMatchObject({ healthy: true, address: '127.0.0.1:27233', uiUrl: 'http://127.0.0.1:28233', managed: true });
    expect(st.s3).toMatchObject({ healthy: true, endpoint: 'http://127.0.0.1:22533', bucket: 't1-checkpoints', managed: true });
    const ui = await fetch(st.temporal.uiUrl);
    expect(ui.status).toBe(200);

    const again = await stackUp(cfg);
    expect(again.temporal.pid).toBe(st.temporal.pid);
    expect(again.s3.pid).toBe(st.s3.pid);

    const down = await stackDown(cfg);
    expect(down.stopped.sort()).toEqual(['s3', 'temporal']);
    const after = await stackStatus(cfg);
    expect(after.temporal.healthy).toBe(false);
    expect(after.s3.healthy).toBe(false);
    expect(() => process.kill(st.temporal.pid!, 0)).toThrow();
    expect((await stackDown(cfg)).stopped).toEqual([]);
  });

  it('a taken port gives a clear error naming the port and the setting', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(27233, '127.0.0.1', () => r()));
    try {
      const err = await stackUp(cfg).catch((e) => e);
      expect(err).toBeInstanceOf(StackError);
      expect(err.message).toMatch(/port 27233 \(stack\.temporalPort \[T1_TEMPORAL_PORT\]\) is already in use/);
      // down never touches a process that up did not start
      expect((await stackDown(cfg)).stopped).toEqual([]);
      expect(blocker.listening).toBe(true);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
