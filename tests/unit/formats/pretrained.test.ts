/** Bad bases are refused by name before a weight is read; `t1 export` from the command line. */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGguf } from '../../../formats/gguf';
import { PretrainedFormatError } from '../../../formats/llama-config-io';
import { openPretrained } from '../../../formats/pretrained';
import { SMOLLM2, smolLm2Gguf } from '../../../infra/models';
import { UserError } from '../../../util/errors';

const ROOT = join(import.meta.dirname, '../../..');
const FIXTURE = join(ROOT, 'tests/fixtures/pretrained/llama-tied');
let tmp: string;
beforeAll(() => void (tmp = mkdtempSync(join(tmpdir(), 't1-pretrained-'))));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function withConfig(name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = join(tmp, name);
  cpSync(FIXTURE, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

describe('openPretrained refuses, naming the cause', () => {
  it('an unsupported architecture in config.json', () => {
    const dir = withConfig('gpt2', (c) => (c.architectures = ['GPT2LMHeadModel']));
    expect(() => openPretrained(dir)).toThrow(PretrainedFormatError);
    expect(() => openPretrained(dir)).toThrow(
      `${dir}/config.json: architecture "GPT2LMHeadModel" is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)`,
    );
  });

  it('an unsupported GGUF architecture', () => {
    const file = join(tmp, 'gpt2.gguf');
    writeGguf(file, { 'general.architecture': { type: 'string', value: 'gpt2' } }, []);
    expect(() => openPretrained(file)).toThrow(`${file}: general.architecture "gpt2" is not supported (supported: llama, qwen2)`);
  });

  it('a rope type the family cannot compute, an MLP bias, a weight of the wrong shape', () => {
    const yarn = withConfig('yarn', (c) => (c.rope_parameters = { rope_type: 'yarn', rope_theta: 10000, factor: 4 }));
    expect(() => openPretrained(yarn)).toThrow(/rope type "yarn" is not supported/);
    const bias = withConfig('mlp-bias', (c) => (c.mlp_bias = true));
    expect(() => openPretrained(bias)).toThrow(/mlp_bias is not supported/);
    const wide = withConfig('wide', (c) => (c.intermediate_size = 128));
    expect(() => openPretrained(wide)).toThrow(/tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[96,64\], expected \[128,64\]/);
  });

  it('a path that does not exist; every refusal is a user error (one line, not retried)', () => {
    expect(() => openPretrained(join(tmp, 'nope'))).toThrow(`${join(tmp, 'nope')}: no such file or directory`);
    const dir = withConfig('gpt2b', (c) => (c.architectures = ['GPT2LMHeadModel']));
    try {
      openPretrained(dir);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).not.toContain('\n');
    }
  });
});

describe('t1 export', () => {
  const t1 = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'bin/t1.js'), 'export', ...args], { encoding: 'utf8', cwd: ROOT });

  it('writes a GGUF file and a Hugging Face directory that t1 opens again, and never overwrites', () => {
    const gguf = join(tmp, 'cli.gguf');
    const r = t1(FIXTURE, '--format', 'gguf', '--dtype', 'f16', '--out', gguf, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: 'gguf', dtype: 'f16', architecture: 'LlamaForCausalLM' });
    expect(openPretrained(gguf).config.dModel).toBe(64);
    const hf = join(tmp, 'cli-hf');
    expect(t1(gguf, '--format', 'safetensors', '--out', hf).status).toBe(0);
    expect(existsSync(join(hf, 'model.safetensors')) && existsSync(join(hf, 'tokenizer.json'))).toBe(true);
    const again = t1(FIXTURE, '--format', 'gguf', '--out', gguf);
    expect(again.status).toBe(1);
    expect(again.stderr.trim()).toBe(`t1 export: --out: ${gguf} already exists (an export never overwrites)`);
  });

  it('refuses a bad format or a bad model with one line', () => {
    const bad = t1(FIXTURE, '--format', 'onnx', '--out', join(tmp, 'x'));
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe('t1 export: --format: expected one of gguf, safetensors, got "onnx"');
    const missing = t1(join(tmp, 'nope'), '--format', 'gguf', '--out', join(tmp, 'y.gguf'));
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim()).toBe(`t1 export: ${join(tmp, 'nope')}: no such file or directory`);
  });

  it('t1 eval MODEL --benchmark serves the model in-process and asks through its chat template', () => {
    const bench = join(tmp, 'bench.jsonl');
    writeFileSync(bench, '{"problem": "What is 2 + 3?", "answer": "5"}\n{"question": "What is 4 * 4?", "answer": 16}\n');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/t1.js'), 'eval', FIXTURE, '--benchmark', bench, '--max-tokens', '6', '--json'], {
      encoding: 'utf8',
      cwd: ROOT,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: FIXTURE, problems: 2, samples: 1 });
    expect(out.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions$/);
    expect(out.records.map((x: { samples: { text: string }[] }) => typeof x.samples[0].text)).toEqual(['string', 'string']);
  });

  it('t1 eval MODEL --task evaluates the model zero-shot in its chat format; a prompt longer than its context is refused by name', async () => {
    const smol = await smolLm2Gguf();
    const args = ['eval', smol, '--task', 'arithmetic', '--problems', '2', '--max-new-tokens', '24', '--temperature', '0', '--json'];
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/t1.js'), ...args], { encoding: 'utf8', cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: smol, task: 'arithmetic', problems: 2, samples: 1, temperature: 0, maxNewTokens: 24 });
    expect(out.sha256).toBe(SMOLLM2.sha256);
    expect(out.passAtK).toEqual({ '1': out.passAt1 }); // greedy: one sample per problem, so k = 1 only
    expect(out.meanLength).toBeGreaterThan(0);
    const tiny = spawnSync(process.execPath, [join(ROOT, 'bin/t1.js'), 'eval', FIXTURE, '--task', 'arithmetic', '--problems', '1'], {
      encoding: 'utf8',
      cwd: ROOT,
    });
    expect(tiny.status).toBe(1);
    expect(tiny.stderr.trim().split('\n').pop()).toMatch(
      /^t1 eval: problem \w+: its prompt is \d+ tokens, the model's context 128 \(no room to answer\)$/,
    );
  }, 120_000);
});
