import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureChromium, screenshot } from '../../infra/chromium';
import { resolveConfig } from '../../config/presets';
import { SA } from '../../config/search-attributes';
import { campaignHandle } from '../../client/campaigns';
import { connectClient } from '../../infra/temporal';
import { campaignWorkflow } from '../../workflows/campaign';
import { killHard, spawnWorker, t1, testConnection, testEnv, uniqueCampaign } from './helpers';
import { decodePng, inkFraction } from './png';

let worker: ReturnType<typeof spawnWorker>;
beforeAll(() => {
  worker = spawnWorker();
});
afterAll(async () => {
  await killHard(worker);
});

describe('the t1 command (against the real stack)', () => {
  it('stack status --json reports both servers healthy', async () => {
    const r = await t1('stack', 'status', '--json');
    expect(r.code).toBe(0);
    const st = JSON.parse(r.stdout);
    expect(st.temporal).toMatchObject({
      healthy: true,
      address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      uiUrl: expect.stringMatching(/^http:/),
    });
    expect(st.s3).toMatchObject({ healthy: true, endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/) });
    expect(r.stdout).not.toMatch(/secret/i);
  });

  it('campaign start --wait --json prints the result contract; status and checkpoints ls agree', async () => {
    const r = await t1('campaign', 'start', '--preset', 'smoke', '--seed', '3', '--wait', '--json');
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      status: 'completed',
      results: {
        sft: { accuracy: expect.any(Number), stderr: expect.any(Number), greedyAccuracy: expect.any(Number) },
        final: { accuracy: expect.any(Number), stderr: expect.any(Number), greedyAccuracy: expect.any(Number) },
      },
      checkpoints: { final: { id: expect.any(String), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } },
    });
    // Every checkpoint is swept: greedy and the smoke preset's two temperatures, 2 samples each.
    expect(result.evals.map((e: any) => e.sweep.test.map((s: any) => s.temperature))).toEqual([
      [null, 0.5, 1],
      [null, 0.5, 1],
    ]);
    for (const k of ['accuracy', 'greedyAccuracy'] as const) expect(result.results.final[k]).toBeGreaterThanOrEqual(0);
    // Every smoke RL prompt has 3 numbers: the epoch records the prompts' mean difficulty.
    expect(result.epochs.map((e: any) => e.difficulty)).toEqual(result.epochs.map(() => 3));
    const status = JSON.parse((await t1('campaign', 'status', result.id, '--json')).stdout);
    expect(status).toMatchObject({ campaignId: result.id, stage: 'done', epoch: 2 });
    expect(status.config.seed).toBe(3);
    const ls = JSON.parse((await t1('checkpoints', 'ls', '--campaign', result.id, '--json')).stdout);
    expect(ls.map((m: any) => m.id)).toContain(result.checkpoints.final.id);
    // Inference-scaling contract: per-budget accuracy plus pass@1.
    const ev = await t1(
      'eval',
      result.checkpoints.final.id,
      '--task',
      'countdown',
      '--samples',
      '2',
      '--budgets',
      '16,32',
      '--problems',
      '8',
      '--json',
    );
    expect(ev.code, ev.stderr).toBe(0);
    const scaling = JSON.parse(ev.stdout);
    expect(scaling.budgets.map((b: any) => b.budget).slice(0, 2)).toEqual([16, 32]);
    for (const b of scaling.budgets) expect(b.accuracy).toBeGreaterThanOrEqual(0);
    expect(scaling.passAt1).toEqual(expect.any(Number));
    const verify = await t1('checkpoints', 'verify', result.checkpoints.final.id);
    expect(verify.code).toBe(0);
    const list = await t1('campaign', 'list', '--json');
    expect(JSON.parse(list.stdout).some((c: any) => c.id === result.id && c.status === 'COMPLETED')).toBe(true);

    // The report renders: the page parses in a browser, the charts exist, and a screenshot shows content.
    const out = mkdtempSync(join(tmpdir(), 't1-report-'));
    try {
      const rep = await t1('report', result.id, '--out', out);
      expect(rep.code, rep.stderr).toBe(0);
      expect(rep.stdout.trim()).toBe(join(out, 'index.html'));
      const charts = readdirSync(out)
        .filter((f) => f.endsWith('.svg'))
        .sort();
      expect(charts).toEqual([
        'inference-scaling.svg',
        'rl-entropy.svg',
        'rl-kl.svg',
        'rl-length.svg',
        'rl-reward.svg',
        'sft-loss.svg',
        'steps-accuracy.svg',
      ]);
      for (const c of charts) expect(readFileSync(join(out, c), 'utf8')).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>$/);
      const pngs = readdirSync(out)
        .filter((f) => f.endsWith('.png'))
        .sort();
      expect(pngs).toEqual(charts.map((c) => c.replace(/\.svg$/, '.png')));
      for (const p of pngs) expect(inkFraction(decodePng(join(out, p)))).toBeGreaterThan(0.005); // decodePng checks the signature
      const dom = execFileSync(
        ensureChromium(),
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          `--user-data-dir=${join(out, 'profile')}`,
          '--dump-dom',
          `file://${join(out, 'index.html')}`,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      );
      expect(dom).toContain(`Campaign ${result.id}`);
      expect((dom.match(/<svg/g) ?? []).length).toBe(7);
      expect(dom).toContain(result.checkpoints.final.id);
      const png = join(out, 'page.png');
      screenshot(`file://${join(out, 'index.html')}`, png);
      expect(inkFraction(decodePng(png))).toBeGreaterThan(0.01);

      // Our checkpoint behind the OpenAI-compatible API, evaluated like any external model.
      const bench = join(out, 'bench.jsonl');
      writeFileSync(bench, ['{"problem": "3 5 7 -> 22", "answer": "22"}', '{"question": "2 4 6 -> 14", "answer": "14"}'].join('\n'));
      const server = spawn(process.execPath, ['bin/t1.js', 'serve', result.checkpoints.final.id, '--port', '18999', '--name', 'ours'], {
        env: testEnv(),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          server.stderr!.on('data', (d) => String(d).includes('[serve]') && resolve());
          server.once('exit', (c) => reject(new Error(`serve exited with ${c}`)));
        });
        const ev = await t1(
          'eval',
          '--endpoint',
          'http://127.0.0.1:18999',
          '--model',
          'ours',
          '--benchmark',
          bench,
          '--max-tokens',
          '32',
          '--json',
        );
        expect(ev.code, ev.stderr).toBe(0);
        expect(JSON.parse(ev.stdout)).toMatchObject({ model: 'ours', problems: 2, accuracy: expect.any(Number) });
      } finally {
        server.kill('SIGKILL');
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('status of a campaign whose query no worker answers falls back to its search attributes, saying so', async () => {
    const client = await connectClient(testConnection().temporal);
    const id = uniqueCampaign('unserved');
    // A task queue no worker polls: the workflow exists but nothing can answer its status query.
    const h = await client.workflow.start(campaignWorkflow, {
      taskQueue: `nobody-${id}`,
      workflowId: id,
      args: [{ campaignId: id, config: resolveConfig({ preset: 'smoke' }), preset: 'smoke' }],
      typedSearchAttributes: [{ key: SA.stage, value: 'synthesize' }],
    });
    try {
      const json = await t1('campaign', 'status', id, '--json');
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        campaignId: id,
        workflowStatus: 'RUNNING',
        fallback: { stage: 'synthesize', reason: expect.stringMatching(/status query unanswered/) },
      });
      const text = await t1('campaign', 'status', id);
      expect(text.stdout).toMatch(new RegExp(`RUNNING  ${id}  synthesize .*from search attributes: status query unanswered`));
    } finally {
      await h.terminate();
      await client.connection.close();
    }
  });

  it('a config error met inside an activity fails the campaign at once, naming the field, without retries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 't1-cfg-'));
    try {
      // Valid for the schema, but more distinct problems than countdown with 3 numbers has.
      const file = join(dir, 'too-many.json');
      writeFileSync(
        file,
        JSON.stringify({
          ...resolveConfig({ preset: 'smoke' }),
          data: { ...resolveConfig({ preset: 'smoke' }).data, sftExamples: 200000 },
        }),
      );
      const id = uniqueCampaign('too-many');
      const t0 = Date.now();
      const r = await t1('campaign', 'start', '--config', file, '--id', id, '--wait');
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^t1 campaign start: .*failed: data\.sftExamples: only \d+ of 200000 SFT examples \(countdown: no solvable problem after \d+ candidates/,
      ); // one line
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(Date.now() - t0).toBeLessThan(60_000);
      const client = await connectClient(testConnection().temporal);
      try {
        const history = await campaignHandle(client, id).fetchHistory();
        const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
        expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]); // one attempt: not retried
      } finally {
        await client.connection.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('user mistakes get one clear message naming the problem, no stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['campaign', 'start', '--preset', 'nope'], /unknown preset "nope"; presets: full, hard, quick, smoke/],
      [['campaign', 'start', '--seed', 'x'], /--seed: expected a non-negative integer/],
      [['campaign', 'status', 'no-such-campaign'], /no campaign "no-such-campaign"/],
      [['checkpoints', 'verify', 'bad id'], /expected a checkpoint id <campaign>\/<name>/],
      [['checkpoints', 'verify', 'c/missing'], /checkpoint c\/missing does not exist/],
      [['campaign', 'frobnicate'], /unknown command "campaign frobnicate"/],
    ];
    for (const [args, pattern] of cases) {
      const r = await t1(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});
