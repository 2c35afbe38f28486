import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHfDirectory, readHfTensor, writeHfDirectory, type HfDirectory } from '../../../formats/hf-dir';
import { readSafetensorsHeader, writeSafetensors } from '../../../formats/safetensors';

const FIXTURES = join(import.meta.dirname, '../../fixtures/pretrained');
const NAMES = ['llama-tied', 'llama3-untied', 'mistral', 'qwen2', 'qwen2-bf16'];

interface Reference {
  tensors: Record<string, number[]>;
  probes: { name: string; first: number[] }[];
}
const reference = (name: string): Reference => JSON.parse(readFileSync(join(FIXTURES, name, 'reference.json'), 'utf8')) as Reference;

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hf-dir-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** A scratch copy of a fixture directory, to break. */
function copyFixture(name: string): string {
  const dir = join(tmp, name);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

const shapes = (d: HfDirectory) => Object.fromEntries([...d.tensors.values()].map((t) => [t.name, t.shape]));
const sha256 = (a: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

describe('openHfDirectory on directories saved by transformers', () => {
  for (const name of NAMES) {
    it(`${name}: lists every tensor with its Hugging Face name and shape`, () => {
      const d = openHfDirectory(join(FIXTURES, name));
      expect(shapes(d)).toEqual(reference(name).tensors);
      expect(d.tensors.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([64, 64]);
      expect(d.tensors.get('model.layers.1.self_attn.k_proj.weight')!.shape).toEqual([32, 64]); // 2 KV heads x head_dim 16
      expect(d.tensors.get('model.layers.1.mlp.down_proj.weight')!.shape).toEqual([64, 96]);
      expect(d.config.vocab_size).toBe(320);
      expect(d.tokenizer.model).toMatchObject({ type: 'BPE' });
      expect(d.tokenizerConfig.eos_token).toBe('<|im_end|>');
      expect(d.tokenizerConfig.chat_template).toMatch(/^\{% for message in messages %\}\{\{ '<\|im_start\|>'/);
      expect(d.generationConfig).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
      for (const p of reference(name).probes) expect(Array.from(readHfTensor(d.tensors.get(p.name)!).subarray(0, 8))).toEqual(p.first);
    });
  }

  it('tells tied from untied heads, q/k/v biases, and the stored dtype', () => {
    const tied = openHfDirectory(join(FIXTURES, 'llama-tied'));
    expect(tied.tensors.has('lm_head.weight')).toBe(false);
    expect(tied.config.tie_word_embeddings).toBe(true);
    expect(openHfDirectory(join(FIXTURES, 'mistral')).tensors.get('lm_head.weight')!.shape).toEqual([320, 64]);
    const qwen = openHfDirectory(join(FIXTURES, 'qwen2'));
    expect(qwen.tensors.get('model.layers.0.self_attn.q_proj.bias')!.shape).toEqual([64]);
    expect(qwen.tensors.get('model.layers.0.self_attn.v_proj.bias')!.shape).toEqual([32]);
    expect(new Set([...qwen.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F32']));
    const bf16 = openHfDirectory(join(FIXTURES, 'qwen2-bf16'));
    expect(new Set([...bf16.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['BF16']));
  });

  it('merges the shards named by model.safetensors.index.json', () => {
    const d = openHfDirectory(join(FIXTURES, 'llama3-untied'));
    expect(d.tensors.size).toBe(21);
    const files = new Set([...d.tensors.values()].map((t) => basename(t.file)));
    expect(files).toEqual(
      new Set(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']),
    );
    const index = JSON.parse(readFileSync(join(d.dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    for (const [name, file] of Object.entries(index.weight_map)) expect(basename(d.tensors.get(name)!.file)).toBe(file);
    expect(d.config.rope_parameters).toMatchObject({ rope_type: 'llama3', factor: 8 });
  });
});

describe('openHfDirectory refuses broken directories by name', () => {
  it('a directory without tokenizer.json', () => {
    const dir = copyFixture('qwen2');
    rmSync(join(dir, 'tokenizer.json'));
    let error: unknown;
    try {
      openHfDirectory(dir);
    } catch (e) {
      error = e;
    }
    expect(String(error)).toBe(
      `HfDirError: ${dir}: tokenizer.json is missing (a Hugging Face model directory needs config.json, tokenizer.json and *.safetensors)`,
    );
  });

  it('a directory without config.json, or with one that is not JSON', () => {
    const dir = copyFixture('mistral');
    writeFileSync(join(dir, 'config.json'), '{"vocab_size": 320,');
    expect(() => openHfDirectory(dir)).toThrow(/mistral\/config\.json: not valid JSON/);
    rmSync(join(dir, 'config.json'));
    expect(() => openHfDirectory(dir)).toThrow(/mistral: config\.json is missing/);
  });

  it('an index naming a missing shard', () => {
    const dir = copyFixture('llama3-untied');
    rmSync(join(dir, 'model-00002-of-00003.safetensors'));
    expect(() => openHfDirectory(dir)).toThrow(
      /shard model-00002-of-00003\.safetensors named in model\.safetensors\.index\.json is missing/,
    );
  });

  it('an index that puts a tensor in the wrong shard', () => {
    const dir = copyFixture('llama3-untied');
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    index.weight_map['model.norm.weight'] = 'model-00001-of-00003.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    expect(() => openHfDirectory(dir)).toThrow(
      /tensor model\.norm\.weight is listed in .* under model-00001-of-00003\.safetensors but is in/,
    );
  });

  it('no weights at all', () => {
    const dir = copyFixture('llama-tied');
    rmSync(join(dir, 'model.safetensors'));
    expect(() => openHfDirectory(dir)).toThrow(/llama-tied: no weights/);
  });

  it('a tensor in two files', () => {
    const dir = copyFixture('llama-tied');
    writeSafetensors(join(dir, 'extra.safetensors'), [{ name: 'model.norm.weight', shape: [64], data: new Float32Array(64) }], 'F32');
    expect(() => openHfDirectory(dir)).toThrow(/tensor model\.norm\.weight is in both .*extra\.safetensors and .*model\.safetensors/);
  });
});

describe('writeHfDirectory', () => {
  const fixture = () => openHfDirectory(join(FIXTURES, 'qwen2'));
  const allTensors = (d: HfDirectory) => [...d.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: readHfTensor(t) }));
  const contents = (d: HfDirectory) => ({ config: d.config, tokenizer: d.tokenizer, tokenizerConfig: d.tokenizerConfig });

  it('round trips a model in F32: same names, shapes and bytes', () => {
    const src = fixture();
    const tensors = allTensors(src);
    const out = join(tmp, 'out');
    writeHfDirectory(out, { ...contents(src), generationConfig: src.generationConfig, tensors, dtype: 'F32' });

    expect(readdirSync(out).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toMatch(/^\{\n {2}"architectures": \[\n/); // pretty-printed
    expect(readSafetensorsHeader(join(out, 'model.safetensors')).metadata).toEqual({ format: 'pt' });
    const back = openHfDirectory(out);
    expect(contents(back)).toEqual(contents(src));
    expect(back.generationConfig).toEqual(src.generationConfig);
    expect(shapes(back)).toEqual(shapes(src));
    for (const t of tensors) expect(sha256(readHfTensor(back.tensors.get(t.name)!))).toBe(sha256(t.data));
  });

  it('writes BF16 that is bit-identical to what PyTorch wrote', () => {
    const src = openHfDirectory(join(FIXTURES, 'qwen2-bf16'));
    const out = join(tmp, 'bf16');
    writeHfDirectory(out, { ...contents(src), tensors: allTensors(src), dtype: 'BF16' });
    const back = openHfDirectory(out);
    const bytes = (file: string, t: { begin: number; end: number }) => readFileSync(file).subarray(t.begin, t.end);
    for (const t of src.tensors.values()) {
      const b = back.tensors.get(t.name)!;
      expect(b.dtype).toBe('BF16');
      expect(bytes(b.file, b.tensor).equals(bytes(t.file, t.tensor))).toBe(true);
    }
  });

  it('shards past maxShardBytes, with an index that opens back to the same tensors', () => {
    const src = fixture();
    const tensors = allTensors(src);
    const out = join(tmp, 'sharded');
    writeHfDirectory(out, { ...contents(src), tensors, dtype: 'F32', maxShardBytes: 100_000 });

    const shards = readdirSync(out).filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThanOrEqual(4); // 412 kB of weights, embeddings alone 82 kB
    expect(shards).toContain(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    for (const f of shards) expect(readSafetensorsHeader(join(out, f)).fileSize).toBeLessThan(100_000 + 4096);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    expect(index.metadata.total_size).toBe(tensors.reduce((s, t) => s + t.data.byteLength, 0));
    expect(Object.keys(index.weight_map).sort()).toEqual(tensors.map((t) => t.name).sort());

    const back = openHfDirectory(out);
    expect(new Set([...back.tensors.values()].map((t) => t.file)).size).toBe(shards.length);
    for (const t of tensors) expect(sha256(readHfTensor(back.tensors.get(t.name)!))).toBe(sha256(t.data));

    // Rewriting unsharded replaces the shards and the index instead of leaving two sets of weights.
    writeHfDirectory(out, { ...contents(src), tensors, dtype: 'F16' });
    expect(readdirSync(out).filter((f) => f.includes('safetensors'))).toEqual(['model.safetensors']);
    expect(openHfDirectory(out).tensors.size).toBe(tensors.length);
  });
});
