/**
 * Encrypted payloads end to end: a worker and a client with T1_PAYLOAD_KEYS run the proof workflow;
 * the server's stored history (its SQLite files, and the history it serves) holds ciphertext only;
 * the codec decodes it; `t1 codec-server` decodes it for the `temporal` CLI and for the web UI,
 * which headless Chromium shows with the plaintext (a PNG in this test's output).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runProof } from '../../client/campaigns';
import { loadStack, type ConnectionConfig } from '../../config/connection';
import { loadGrants } from '../../util/grants';
import { ensureChromium } from '../../infra/chromium';
import { encryptionCodec, ENCRYPTED_ENCODING, METADATA_KEY_ID } from '../../infra/codec';
import { provision } from '../../infra/provision';
import { startService, stopService } from '../../infra/stack';
import { connectClient } from '../../infra/temporal';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { proofWorkflow } from '../../workflows/proof';
import { QUEUES } from '../../contracts/queues';
import { killHard, t1Env, testConnection, testEnv, testStack, uniqueCampaign, waitFor } from './helpers';

const plain = testConnection();
const keys = [{ id: 'k1', key: randomBytes(32).toString('base64') }];
const conn: ConnectionConfig = { ...plain, temporal: { ...plain.temporal, payloadKeys: keys } };
const token = randomBytes(24).toString('hex');
const text = (b?: Uint8Array | null) => Buffer.from(b ?? []).toString('utf8');

/** Every payload in a history, with where it sits; search attributes stay plaintext by design (the server indexes them). */
function payloadsIn(v: unknown, path = '', out: { path: string; payload: Payload }[] = []) {
  if (!v || typeof v !== 'object' || ArrayBuffer.isView(v)) return out;
  const o = v as Record<string, unknown>;
  if (o.metadata && typeof o.metadata === 'object' && 'encoding' in o.metadata) out.push({ path, payload: o as Payload });
  else for (const [k, x] of Object.entries(o)) if (k !== 'searchAttributes') payloadsIn(x, `${path}.${k}`, out);
  return out;
}

/** The dev server's database as stored (SQLite file and its write-ahead log). */
function storedBytes(): Buffer {
  const dir = testStack().stateDir;
  return Buffer.concat(
    readdirSync(dir)
      .filter((f) => f.startsWith('temporal.sqlite'))
      .map((f) => readFileSync(join(dir, f))),
  );
}

let workers: RunningWorkers;
let client: Client; // with the keys
let bare: Client; // without: sees what the server stores
let codecServer: ChildProcess;
let codecUrl: string;
beforeAll(async () => {
  workers = await startWorkers(conn, 'all', loadGrants({}, {}));
  client = await connectClient(conn.temporal);
  bare = await connectClient(plain.temporal);
  // `t1 codec-server` as an operator runs it; the test stack's UI origin is its default.
  codecServer = spawn(process.execPath, ['bin/t1.js', 'codec-server', '--port', '0'], {
    env: { ...testEnv(), T1_PAYLOAD_KEYS: `k1:${keys[0]!.key}`, T1_CODEC_TOKEN: token },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  codecServer.stderr!.on('data', (d) => (err += d));
  codecUrl = await waitFor(
    't1 codec-server to listen',
    async () => codecServer.exitCode === null && /\[codec-server\] (http:\S+) /.exec(err)?.[1],
    60_000,
  );
  expect(err).not.toContain(token);
});
afterAll(async () => {
  if (codecServer) await killHard(codecServer);
  await client?.connection.close();
  await bare?.connection.close();
  await workers?.shutdown();
});

describe('encrypted payloads (T1_PAYLOAD_KEYS) and the codec server', () => {
  const campaign = uniqueCampaign('codec');
  let result: Awaited<ReturnType<typeof runProof>>;

  it('the server stores ciphertext only; the codec decodes it', async () => {
    // Control: a workflow started without keys has a plaintext input, which the scan of the database finds
    // (the worker encrypts its result: only a client with the keys reads that).
    const control = uniqueCampaign('codec-plain');
    await bare.workflow.start(proofWorkflow, { taskQueue: QUEUES.cpu, workflowId: control, args: [{ campaign: control, seed: 1 }] });
    await expect(bare.workflow.getHandle(control).result()).rejects.toThrow(/encrypted with key "k1".*no keys are set/);
    await client.workflow.getHandle(control).result();
    result = await runProof(client, { campaign, seed: 7 });
    expect(result.read).toMatchObject({ id: `${campaign}/proof`, verified: true });
    // A failure's message and stack trace are encrypted too: another seed for the same checkpoint id
    // fails (committed checkpoints are never overwritten) with a message naming the checkpoint.
    const again = `${campaign}-again`;
    const args = [{ campaign, seed: 8 }] as const;
    const failed = (await client.workflow
      .execute(proofWorkflow, { taskQueue: QUEUES.cpu, workflowId: again, args: [...args] })
      .catch((e: unknown) => e)) as Error;
    const cause = (e: unknown): Error => (e as { cause: Error }).cause;
    expect(cause(cause(failed)).message).toContain(`checkpoint ${campaign}/proof is already committed with different content`);
    const failedEvent = (await bare.workflow.getHandle(again).fetchHistory()).events!.at(-1)!.workflowExecutionFailedEventAttributes!;
    expect(failedEvent.failure!.cause!.message).toBe('Encoded failure');

    const stored = storedBytes();
    expect(stored.includes(`"campaign":"${control}"`)).toBe(true);
    for (const s of [`"campaign":"${campaign}"`, `${campaign}/proof`, result.ref.sha256]) expect(stored.includes(s)).toBe(false);

    const history = await bare.workflow.getHandle(campaign).fetchHistory();
    const found = payloadsIn(history);
    // input, 2 activity inputs, 2 activity results, the result
    expect(found.length).toBeGreaterThanOrEqual(6);
    for (const { path, payload } of found) {
      expect({ path, encoding: text(payload.metadata!.encoding) }).toEqual({ path, encoding: ENCRYPTED_ENCODING });
      expect(text(payload.metadata![METADATA_KEY_ID])).toBe('k1');
    }
    const served = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish());
    for (const s of [`${campaign}/proof`, result.ref.sha256, '"seed"']) expect(served.includes(s)).toBe(false);

    const decoded = await encryptionCodec(conn.temporal).decode(found.map((f) => f.payload));
    const values = decoded.map((p) => defaultPayloadConverter.fromPayload(p));
    expect(values).toContainEqual({ campaign, seed: 7 });
    expect(values).toContainEqual(result);
  });

  it('the codec server decodes for holders of the token only, and for the temporal CLI', async () => {
    const history = await bare.workflow.getHandle(campaign).fetchHistory();
    const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    const body = JSON.stringify({
      payloads: [
        {
          metadata: Object.fromEntries(Object.entries(input.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
          data: Buffer.from(input.data!).toString('base64'),
        },
      ],
    });
    const post = (headers: Record<string, string>) =>
      fetch(`${codecUrl}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
    const ok = await post({ Authorization: `Bearer ${token}`, 'X-Namespace': conn.temporal.namespace });
    expect(ok.status).toBe(200);
    const [p] = ((await ok.json()) as { payloads: { data: string }[] }).payloads;
    expect(JSON.parse(Buffer.from(p.data, 'base64').toString())).toEqual({ campaign, seed: 7 });
    expect((await post({})).status).toBe(401);
    const noToken = await t1Env({ T1_PAYLOAD_KEYS: `k1:${keys[0]!.key}`, T1_CODEC_TOKEN: '' }, 'codec-server');
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toMatch(/T1_CODEC_TOKEN: set it to a random token/);

    const { temporal: bin } = await provision(testStack().cacheDir);
    const show = (...extra: string[]) =>
      promisify(execFile)(bin, ['workflow', 'show', '-w', campaign, '--address', conn.temporal.address, '-o', 'json', ...extra]);
    // JSON output keeps payloads as protobuf JSON (base64): the workflow's result payload, as the CLI shows it.
    const shownResult = (stdout: string) => {
      const p = JSON.parse(stdout).events.at(-1).workflowExecutionCompletedEventAttributes.result.payloads[0];
      return { encoding: Buffer.from(p.metadata.encoding, 'base64').toString(), data: Buffer.from(p.data, 'base64').toString() };
    };
    const viaCodec = await show('--codec-endpoint', codecUrl, '--codec-auth', `Bearer ${token}`);
    expect(shownResult(viaCodec.stdout).encoding).toBe('json/plain');
    expect(JSON.parse(shownResult(viaCodec.stdout).data)).toEqual(result);
    expect(viaCodec.stdout + viaCodec.stderr).not.toContain(token);
    const without = shownResult((await show()).stdout);
    expect(without.encoding).toBe(ENCRYPTED_ENCODING);
    expect(without.data).not.toContain(result.ref.sha256);
  });

  it('the Temporal UI, started with T1_UI_CODEC_ENDPOINT, shows the plaintext (headless Chromium)', async () => {
    const stack = testStack();
    // The dev server takes the UI's codec endpoint at start: restart it with one (the token in the path, as a UI without login needs).
    const withCodec = loadStack(inject('stackOverrides'), { ...process.env, T1_UI_CODEC_ENDPOINT: `${codecUrl}/${token}` });
    await stopService(stack, 'temporal');
    await startService(withCodec, 'temporal');
    const browser = await chromium.launch({ executablePath: ensureChromium(), args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
      const { runId } = await client.workflow.getHandle(campaign).describe();
      await page.goto(`${conn.temporal.uiUrl}/namespaces/${conn.temporal.namespace}/workflows/${campaign}/${runId}/history`);
      // Only the decoded result holds the checkpoint id and its sha256.
      await page.getByText(`${campaign}/proof`).first().waitFor({ timeout: 60_000 });
      expect(await page.getByText(result.ref.sha256).first().isVisible()).toBe(true);
      const png = join(mkdtempSync(join(tmpdir(), 't1-codec-ui-')), 'workflow-decoded.png');
      await page.screenshot({ path: png, fullPage: true });
      console.log(`[codec] the Temporal UI showing the decoded workflow: ${png}`);
    } finally {
      await browser.close();
      await stopService(stack, 'temporal');
      await startService(stack, 'temporal');
    }
  });
});
