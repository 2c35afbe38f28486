/**
 * formats/tokenizer.ts against llama.cpp (node-llama-cpp) as the independent reference: the real
 * SmolLM2-135M-Instruct GGUF on a few hundred varied strings, and the other pre-tokenizers on the
 * vocabulary-only GGUFs llama.cpp tests its own tokenizer with (from the llama.cpp source bundle
 * node-llama-cpp ships), whose .inp/.out files also hold Hugging Face's ids for their strings.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufHeader, writeGguf, type GgufEntry } from '../../../formats/gguf';
import { TokenizerError, type PretrainedTokenizer, tokenizerFromGguf, tokenizerFromHf } from '../../../formats/tokenizer';
import { smolLm2Gguf } from '../../../infra/models';
import { generatedStrings, HAND_WRITTEN, tokenizerCorpus } from './tokenizer-strings';

let llama: Llama;
let tmp: string;

beforeAll(async () => {
  // Loading a vocabulary-only GGUF, node-llama-cpp first probes a full load, which logs a missing tensor; nothing else is hidden.
  const expected = /missing tensor 'token_embd.weight'|llama_model_load_from_file_impl: failed to load model/;
  llama = await getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      if (!expected.test(message)) console.error(`[node-llama-cpp ${level}] ${message}`);
    },
  });
  tmp = mkdtempSync(join(tmpdir(), 't1-tokenizer-'));
}, 120_000);

afterAll(async () => {
  await llama?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Strings where our ids differ from llama.cpp's (parsing special tokens, as encode does). */
function mismatches(
  tok: PretrainedTokenizer,
  model: LlamaModel,
  strings: string[],
): { text: string; ours: number[]; llamaCpp: number[] }[] {
  return strings
    .map((text) => ({ text, ours: tok.encode(text), llamaCpp: model.tokenize(text, true) as number[] }))
    .filter((m) => JSON.stringify(m.ours) !== JSON.stringify(m.llamaCpp));
}

describe('SmolLM2-135M-Instruct GGUF', () => {
  const corpus = tokenizerCorpus();
  let metadata: Record<string, GgufEntry>;
  let tok: PretrainedTokenizer;
  let model: LlamaModel;

  beforeAll(async () => {
    const path = await smolLm2Gguf();
    metadata = readGgufHeader(path).metadata;
    tok = tokenizerFromGguf(metadata);
    model = await llama.loadModel({ modelPath: path });
  }, 120_000);

  afterAll(async () => {
    await model?.dispose();
  });

  it('reads the vocabulary, special ids and chat template', () => {
    expect(tok.vocabSize).toBe(49152);
    expect(tok.bosId).toBe(1); // <|im_start|>
    expect(tok.eosId).toBe(2); // <|im_end|>
    expect(tok.addBos).toBe(false);
    expect(tok.decode([0, 1, 2])).toBe('<|endoftext|><|im_start|><|im_end|>');
    expect(tok.chatTemplate).toContain('<|im_start|>');
  });

  it('encodes every corpus string to llama.cpp ids', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    const bad = mismatches(tok, model, corpus);
    console.log(`SmolLM2: ${corpus.length - bad.length}/${corpus.length} strings encode to llama.cpp's ids`);
    expect(bad).toEqual([]);
  });

  it('turns special-token text into special tokens, as llama.cpp does when parsing special tokens', () => {
    const text = '<|im_start|>user\nHi<|im_end|>';
    expect(tok.encode(text)).toEqual(model.tokenize(text, true));
    expect(tok.encode(text)[0]).toBe(1);
    expect(tok.encode(text).at(-1)).toBe(2);
    // llama.cpp's other mode spells the markers out as text: not what encode does.
    expect(model.tokenize(text, false)).not.toContain(1);
  });

  it('decodes every corpus string back to itself', () => {
    const bad = corpus.filter((s) => tok.decode(tok.encode(s)) !== s);
    expect(bad).toEqual([]);
  });

  it('decodes like llama.cpp, with and without the special tokens', () => {
    const bad = corpus.filter((s) => {
      const ids = model.tokenize(s, true);
      return tok.decode(ids) !== model.detokenize(ids, true) || tok.decode(ids, { skipSpecial: true }) !== model.detokenize(ids, false);
    });
    expect(bad).toEqual([]);
    expect(tok.decode(tok.encode('<|im_start|>user\n<|im_end|>'), { skipSpecial: true })).toBe('user\n');
  });

  it('drops a byte the vocabulary has no token for, as llama.cpp does', () => {
    // SmolLM2 has no byte token for U+0004 (nor for 20 other bytes).
    const text = 'a\u0004b \u0006c';
    expect(tok.encode(text)).toEqual(model.tokenize(text, true));
    expect(tok.decode(tok.encode(text))).toBe('ab c');
  });

  it('refuses ids outside the vocabulary, and decodes nothing to ""', () => {
    expect(() => tok.decode([49152])).toThrow(TokenizerError);
    expect(() => tok.decode([-1])).toThrow(/not in the vocabulary/);
    expect(() => tok.decode([1.5])).toThrow(TokenizerError);
    expect(tok.decode([])).toBe('');
    expect(tok.encode('')).toEqual([]);
  });

  it('renders the ChatML chat template', () => {
    const prompt = tok.renderChat(
      [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'What is 17 + 25?' },
      ],
      { addGenerationPrompt: true },
    );
    expect(prompt).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 17 + 25?<|im_end|>\n<|im_start|>assistant\n',
    );
    // Without a system message, SmolLM2's template inserts its default one.
    expect(tok.renderChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    // A finished conversation, without the assistant header.
    const chat = tok.renderChat([
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      { role: 'assistant', content: 'a' },
    ]);
    expect(chat).toBe('<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n');
    expect(tok.encode(chat)).toEqual(model.tokenize(chat, true));
  });

  it('writes Hugging Face files that load back to the same tokenizer', () => {
    const { tokenizer, tokenizerConfig } = tok.toHfFiles();
    const json = JSON.parse(JSON.stringify(tokenizer)); // as written to disk and read back
    const config = JSON.parse(JSON.stringify(tokenizerConfig));
    // SmolLM2's own tokenizer.json pre-tokenizer and special tokens.
    expect(json.pre_tokenizer).toEqual({
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    });
    expect(json.model.type).toBe('BPE');
    expect(json.model.merges).toHaveLength(48900);
    expect(json.added_tokens).toHaveLength(17);
    expect(json.added_tokens.every((t: { special: boolean }) => t.special)).toBe(true);
    expect(config).toMatchObject({
      bos_token: '<|im_start|>',
      eos_token: '<|im_end|>',
      chat_template: tok.chatTemplate,
      add_bos_token: false,
    });
    expect(config.added_tokens_decoder['2']).toMatchObject({ content: '<|im_end|>', special: true });

    const hf = tokenizerFromHf(json, config);
    expect([hf.vocabSize, hf.bosId, hf.eosId, hf.addBos]).toEqual([tok.vocabSize, tok.bosId, tok.eosId, tok.addBos]);
    const bad = corpus.filter((s) => JSON.stringify(hf.encode(s)) !== JSON.stringify(tok.encode(s)));
    expect(bad).toEqual([]);
    const messages = [{ role: 'user' as const, content: 'Hi' }];
    expect(hf.renderChat(messages, { addGenerationPrompt: true })).toBe(tok.renderChat(messages, { addGenerationPrompt: true }));
  });

  it('gives GGUF metadata back: its own, and an equal one from the Hugging Face files', () => {
    const own = Object.fromEntries(Object.entries(metadata).filter(([k]) => k.startsWith('tokenizer.')));
    expect(tok.toGgufMetadata()).toEqual(own);

    const { tokenizer, tokenizerConfig } = tok.toHfFiles();
    const rebuilt = tokenizerFromHf(tokenizer, tokenizerConfig).toGgufMetadata();
    for (const key of ['model', 'pre', 'tokens', 'token_type', 'merges', 'bos_token_id', 'eos_token_id', 'add_bos_token']) {
      expect(rebuilt[`tokenizer.ggml.${key}`]?.value, key).toEqual(own[`tokenizer.ggml.${key}`].value);
    }
    expect(rebuilt['tokenizer.chat_template'].value).toBe(own['tokenizer.chat_template'].value);
    const again = tokenizerFromGguf(rebuilt);
    expect(corpus.filter((s) => JSON.stringify(again.encode(s)) !== JSON.stringify(tok.encode(s)))).toEqual([]);
  });

  it('measures encode speed', () => {
    const text = generatedStrings(3000, 7).join('\n');
    const fresh = tokenizerFromGguf(metadata); // an empty BPE cache
    const start = performance.now();
    const ids = fresh.encode(text);
    const seconds = (performance.now() - start) / 1000;
    console.log(
      `SmolLM2 encode: ${ids.length} tokens (${text.length} chars) in ${(seconds * 1000).toFixed(0)} ms = ${Math.round(ids.length / seconds)} tokens/s`,
    );
    expect(ids).toEqual(model.tokenize(text, true));
  });
});

/** The vocabulary-only GGUFs of llama.cpp's tokenizer tests, taken from the llama.cpp source bundle that node-llama-cpp ships. */
const VOCABS = ['gpt-2', 'llama-bpe', 'qwen2', 'starcoder'] as const;

describe("other pre-tokenizers, on llama.cpp's vocabulary test files", () => {
  beforeAll(() => {
    const pkg = dirname(dirname(createRequire(import.meta.url).resolve('node-llama-cpp')));
    const repo = join(tmp, 'llama.cpp.git');
    execFileSync('git', ['clone', '--quiet', '--bare', join(pkg, 'llama', 'gitRelease.bundle'), repo]);
    for (const name of VOCABS) {
      for (const ext of ['', '.inp', '.out']) {
        const file = `ggml-vocab-${name}.gguf${ext}`;
        writeFileSync(join(tmp, file), execFileSync('git', ['--git-dir', repo, 'show', `HEAD:models/${file}`], { maxBuffer: 1 << 26 }));
      }
    }
  }, 120_000);

  /** llama.cpp's test strings (.inp) and Hugging Face's ids for them (.out). */
  function hfCases(name: string): { text: string; ids: number[] }[] {
    const inputs = readFileSync(join(tmp, `ggml-vocab-${name}.gguf.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
    if (inputs.at(-1) === '') inputs.pop();
    const outputs = readFileSync(join(tmp, `ggml-vocab-${name}.gguf.out`), 'utf8')
      .split('\n')
      .slice(0, inputs.length);
    expect(outputs).toHaveLength(inputs.length);
    return inputs.map((text, i) => ({ text, ids: outputs[i].trim().split(/ +/).filter(Boolean).map(Number) }));
  }

  async function checkParity(name: string, file: string, metadata: Record<string, GgufEntry>): Promise<void> {
    const tok = tokenizerFromGguf(metadata);
    const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
    try {
      const strings = [...hfCases(name).map((c) => c.text), ...HAND_WRITTEN, ...generatedStrings(60, 11)];
      const bad = mismatches(tok, model, strings);
      console.log(
        `${String(metadata['tokenizer.ggml.pre'].value)}: ${strings.length - bad.length}/${strings.length} strings encode to llama.cpp's ids`,
      );
      if (name === 'qwen2') {
        // Qwen2's "</s>" is an ordinary token (type 1, and in Hugging Face's tokenizer), but llama.cpp makes
        // every token spelled like an end of generation a control token, whatever its type; we keep the type.
        expect(bad.map((m) => m.text)).toEqual(HAND_WRITTEN.filter((s) => s.includes('</s>')));
        expect(model.tokenize('</s>', true)).toEqual([128247]);
        expect(tok.encode('</s>')).toEqual(model.tokenize('</s>', false));
      } else expect(bad).toEqual([]);
      expect(strings.filter((s) => tok.decode(tok.encode(s)) !== s)).toEqual([]);
      const hf = tokenizerFromHf(tok.toHfFiles().tokenizer, tok.toHfFiles().tokenizerConfig);
      expect(strings.filter((s) => JSON.stringify(hf.encode(s)) !== JSON.stringify(tok.encode(s)))).toEqual([]);
    } finally {
      await model.dispose();
    }
  }

  it.each(VOCABS)('%s: llama.cpp ids, Hugging Face ids, round trip and HF files', async (name) => {
    const file = join(tmp, `ggml-vocab-${name}.gguf`);
    const metadata = readGgufHeader(file).metadata;
    expect(metadata['tokenizer.ggml.pre'].value).toBe(name);
    const tok = tokenizerFromGguf(metadata);
    expect(hfCases(name).filter((c) => JSON.stringify(tok.encode(c.text)) !== JSON.stringify(c.ids))).toEqual([]);
    await checkParity(name, file, metadata);
  });

  it("llama-bpe wants a BOS (llama.cpp's default for it); its HF files say so in the post-processor too", () => {
    const tok = tokenizerFromGguf(readGgufHeader(join(tmp, 'ggml-vocab-llama-bpe.gguf')).metadata);
    expect([tok.addBos, tok.bosId]).toEqual([true, 128000]);
    expect(tok.encode('Hi')[0]).not.toBe(128000);
    const { tokenizer, tokenizerConfig } = tok.toHfFiles();
    const { add_bos_token: _, ...withoutFlag } = tokenizerConfig as Record<string, unknown>;
    expect(tokenizerFromHf(tokenizer, withoutFlag).addBos).toBe(true);
    expect(tokenizerFromGguf(readGgufHeader(join(tmp, 'ggml-vocab-gpt-2.gguf')).metadata).addBos).toBe(false);
  });

  it('default (llama.cpp\'s fallback): the GPT-2 vocabulary relabelled "default"', async () => {
    const metadata = { ...readGgufHeader(join(tmp, 'ggml-vocab-gpt-2.gguf')).metadata };
    metadata['tokenizer.ggml.pre'] = { type: 'string', value: 'default' };
    const file = join(tmp, 'ggml-vocab-default.gguf');
    writeGguf(file, metadata, []);
    await checkParity('gpt-2', file, metadata);
    // It splits differently from gpt-2: punctuation runs and digit triples are pieces of their own.
    const gpt2 = tokenizerFromGguf(readGgufHeader(join(tmp, 'ggml-vocab-gpt-2.gguf')).metadata);
    expect(tokenizerFromGguf(metadata).encode('x 1234567 a$+b')).not.toEqual(gpt2.encode('x 1234567 a$+b'));
  });
});

describe('errors', () => {
  const base = (): Record<string, GgufEntry> => ({
    'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
    'tokenizer.ggml.pre': { type: 'string', value: 'smollm' },
    'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: ['a', 'b', 'ab', '<|end|>'] },
    'tokenizer.ggml.token_type': { type: 'array', itemType: 'i32', value: [1, 1, 1, 3] },
    'tokenizer.ggml.merges': { type: 'array', itemType: 'string', value: ['a b'] },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: 3 },
  });

  it('a tiny valid vocabulary works', () => {
    const tok = tokenizerFromGguf(base());
    expect(tok.encode('abab<|end|>')).toEqual([2, 2, 3]);
    expect(tok.bosId).toBeUndefined();
    expect(() => tok.renderChat([{ role: 'user', content: 'x' }])).toThrow(/no chat template/);
  });

  it('refuses a SentencePiece tokenizer by name', () => {
    const m = { ...base(), 'tokenizer.ggml.model': { type: 'string' as const, value: 'llama' } };
    expect(() => tokenizerFromGguf(m)).toThrow(TokenizerError);
    expect(() => tokenizerFromGguf(m)).toThrow(/tokenizer\.ggml\.model "llama" is not supported.*"gpt2"/);
  });

  it('refuses an unknown pre-tokenizer, listing the supported ones', () => {
    const m = { ...base(), 'tokenizer.ggml.pre': { type: 'string' as const, value: 'gpt-4o' } };
    expect(() => tokenizerFromGguf(m)).toThrow(TokenizerError);
    expect(() => tokenizerFromGguf(m)).toThrow(/tokenizer\.ggml\.pre "gpt-4o" is not supported \(supported: smollm, .*llama-bpe.*qwen2/);
  });

  it('refuses metadata without an eos token or with an id outside the vocabulary', () => {
    const { 'tokenizer.ggml.eos_token_id': _, ...noEos } = base();
    expect(() => tokenizerFromGguf(noEos)).toThrow(/eos_token_id is missing/);
    expect(() => tokenizerFromGguf({ ...base(), 'tokenizer.ggml.bos_token_id': { type: 'u32', value: 9 } })).toThrow(
      /bos_token_id 9 is not a token id/,
    );
  });

  it('refuses a Hugging Face tokenizer it cannot write to GGUF', () => {
    const { tokenizer, tokenizerConfig } = tokenizerFromGguf(base()).toHfFiles();
    const odd = { ...tokenizer, pre_tokenizer: { type: 'Whitespace' } };
    expect(() => tokenizerFromHf(odd, tokenizerConfig).toGgufMetadata()).toThrow(TokenizerError);
    expect(() => tokenizerFromHf(tokenizer, { ...tokenizerConfig, eos_token: '<nope>' })).toThrow(
      /eos_token "<nope>" is not in the vocabulary/,
    );
  });
});
