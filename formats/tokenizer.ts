/**
 * The tokenizer and chat template of a pretrained model, from a Hugging Face directory
 * (tokenizer.json + tokenizer_config.json) or from a GGUF file's tokenizer.* metadata.
 *
 * The BPE itself is @huggingface/tokenizers (a JS port of Hugging Face's tokenizers) and the chat
 * template is rendered by @huggingface/jinja. A GGUF tokenizer is first turned into the
 * tokenizer.json Hugging Face ships for that model family, so both sources take one code path and
 * a GGUF base can be written out as a Hugging Face directory.
 *
 * Only byte-level BPE (GPT-2 style, GGUF `tokenizer.ggml.model = "gpt2"`) is supported from GGUF.
 * What a `tokenizer.ggml.pre` name means is llama.cpp's definition (src/llama-vocab.cpp): a list of
 * regexes, each splitting the pieces the previous one produced. Our ids equal llama.cpp's, with one
 * deliberate exception: llama.cpp also makes any token spelled like an end-of-generation marker
 * ("</s>", "<|endoftext|>", …) a control token whatever its GGUF type (Qwen2's "</s>" is an ordinary
 * one); we keep the file's token types, as Hugging Face does.
 */
import { UserError } from '../util/errors';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { GgufEntry } from './gguf';

export class TokenizerError extends UserError {
  override name = 'TokenizerError';
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

type Json = Record<string, unknown>;

/** GGUF token types (llama.cpp's llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

// Pre-tokenizer regexes, in the Oniguruma syntax tokenizer.json uses (llama.cpp's comments quote the same ones).
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DIGIT = '\\p{N}';
const DIGITS = '\\p{N}+';

/** A llama.cpp pre-tokenizer: its split regexes in order, and the BPE flags it implies. */
interface PreKind {
  splits: string[];
  /** A piece that is already a token is not merged (llama.cpp ignore_merges, tokenizer.json model.ignore_merges). */
  ignoreMerges: boolean;
  /** llama.cpp's add_bos default when the GGUF has no tokenizer.ggml.add_bos_token. */
  addBos: boolean;
}

const PRE_KINDS = {
  // SmolLM, StarCoder: every digit alone, then GPT-2's regex.
  smollm: { splits: [DIGIT, GPT2_REGEX], ignoreMerges: false, addBos: false },
  'gpt-2': { splits: [GPT2_REGEX], ignoreMerges: false, addBos: false },
  // llama.cpp's fallback for a BPE model it does not recognise.
  default: { splits: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, DIGITS, '[0-9][0-9][0-9]'], ignoreMerges: false, addBos: false },
  'llama-bpe': { splits: [LLAMA3_REGEX], ignoreMerges: true, addBos: true },
  qwen2: { splits: [QWEN2_REGEX], ignoreMerges: false, addBos: false },
} satisfies Record<string, PreKind>;
type PreKindName = keyof typeof PRE_KINDS;

/** tokenizer.ggml.pre names -> kind: the names llama.cpp maps to the same regexes and merge rule. */
const PRE_NAMES: Record<string, PreKindName> = {
  smollm: 'smollm',
  starcoder: 'smollm',
  refact: 'smollm',
  'command-r': 'smollm',
  codeshell: 'smollm',
  'gpt-2': 'gpt-2',
  'phi-2': 'gpt-2',
  mpt: 'gpt-2',
  olmo: 'gpt-2',
  default: 'default',
  'llama-bpe': 'llama-bpe',
  llama3: 'llama-bpe',
  'llama-v3': 'llama-bpe',
  qwen2: 'qwen2',
  'deepseek-r1-qwen': 'qwen2',
  stablelm2: 'qwen2',
};

/**
 * The pre_tokenizer Hugging Face ships for each kind (SmolLM2's and GPT-2's ByteLevel applies GPT-2's
 * regex itself; Llama 3 and Qwen2 split first and use ByteLevel only for the byte mapping).
 */
function hfPreTokenizer(kind: PreKindName): Json {
  const byteLevel = (useRegex: boolean): Json => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  if (kind === 'gpt-2') return byteLevel(true);
  if (kind === 'smollm') return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] };
  return { type: 'Sequence', pretokenizers: [...PRE_KINDS[kind].splits.map(splitStep), byteLevel(false)] };
}

function splitStep(regex: string): Json {
  return { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false };
}

/**
 * The split regexes a byte-level pre_tokenizer applies, or undefined when it is something else.
 * Digits and ByteLevel(use_regex) become the Split they are in Hugging Face's Rust code, because the
 * JS port implements them with JavaScript's \d (ASCII only) and \s (which takes U+FEFF and not U+0085),
 * unlike Rust and llama.cpp; its Split translates \p{N} and \s with their Unicode meaning.
 */
function splitRegexes(pre: unknown): string[] | undefined {
  const steps = isObject(pre) && pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? pre.pretokenizers : [pre];
  const last = steps.at(-1);
  if (!isObject(last) || last.type !== 'ByteLevel' || last.add_prefix_space === true) return undefined;
  const regexes: string[] = [];
  for (const s of steps.slice(0, -1)) {
    if (!isObject(s)) return undefined;
    if (s.type === 'Digits') regexes.push(s.individual_digits === true ? DIGIT : DIGITS);
    else if (
      s.type === 'Split' &&
      isObject(s.pattern) &&
      typeof s.pattern.Regex === 'string' &&
      s.behavior === 'Isolated' &&
      s.invert !== true
    ) {
      regexes.push(s.pattern.Regex);
    } else return undefined;
  }
  if (last.use_regex !== false) regexes.push(GPT2_REGEX);
  return regexes;
}

function preKindOf(regexes: string[] | undefined, ignoreMerges: boolean): PreKindName | undefined {
  if (!regexes) return undefined;
  const names = Object.keys(PRE_KINDS) as PreKindName[];
  return names.find((k) => PRE_KINDS[k].ignoreMerges === ignoreMerges && PRE_KINDS[k].splits.join('\n') === regexes.join('\n'));
}

export class PretrainedTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  /** End of turn/sequence: the model's eos token (SmolLM2: 2 `<|im_end|>`). */
  readonly eosId: number;
  /** Whether the model expects a BOS token before a prompt (tokenizer.ggml.add_bos_token / add_bos_token); encode never adds it. */
  readonly addBos: boolean;
  readonly chatTemplate: string | undefined;
  private readonly tok: Tokenizer;
  private template: Template | undefined;

  /** Use tokenizerFromHf or tokenizerFromGguf. `gguf`: the tokenizer.* metadata it came from, if any. */
  constructor(
    private readonly tokenizerJson: Json,
    private readonly tokenizerConfig: Json,
    private readonly gguf?: Record<string, GgufEntry>,
  ) {
    const regexes = splitRegexes(tokenizerJson.pre_tokenizer);
    // The JS port gets the recognised pre-tokenizers as Splits (see splitRegexes); the files we hand out stay as given.
    const forJs = regexes
      ? {
          ...tokenizerJson,
          pre_tokenizer: {
            type: 'Sequence',
            pretokenizers: [
              ...regexes.map(splitStep),
              { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
            ],
          },
        }
      : tokenizerJson;
    try {
      this.tok = new Tokenizer(forJs, tokenizerConfig);
    } catch (err) {
      throw new TokenizerError(`cannot load tokenizer.json: ${(err as Error).message}`);
    }

    const vocab = this.tok.get_vocab(true);
    this.vocabSize = 0;
    for (const id of vocab.values()) this.vocabSize = Math.max(this.vocabSize, id + 1);
    if (this.vocabSize === 0) throw new TokenizerError('tokenizer.json has no vocabulary');
    const idOf = (field: string): number | undefined => {
      const name = tokenName(tokenizerConfig[field]);
      if (name === undefined) return undefined;
      const id = vocab.get(name);
      if (id === undefined) throw new TokenizerError(`tokenizer_config.json: ${field} "${name}" is not in the vocabulary`);
      return id;
    };
    this.bosId = idOf('bos_token');
    const eos = idOf('eos_token');
    if (eos === undefined) throw new TokenizerError('tokenizer_config.json: eos_token is missing');
    this.eosId = eos;
    this.addBos =
      typeof tokenizerConfig.add_bos_token === 'boolean'
        ? tokenizerConfig.add_bos_token
        : this.bosId !== undefined && prependsToken(tokenizerJson.post_processor, this.tok.id_to_token(this.bosId)!);
    this.chatTemplate = chatTemplateOf(tokenizerConfig.chat_template);
  }

  /** Token ids of `text`; special tokens written in the text (e.g. "<|im_start|>") become their ids; never adds BOS itself. */
  encode(text: string): number[] {
    const { ids } = this.tok.encode(text, { add_special_tokens: false });
    // The port maps a piece missing from the vocabulary to undefined when there is no unk token.
    if ((ids as (number | undefined)[]).includes(undefined))
      throw new TokenizerError(`a piece of ${JSON.stringify(text.slice(0, 80))} has no token`);
    return ids;
  }

  /** The text of `ids`; special tokens are written out unless skipSpecial. Exact: no clean-up of spaces before punctuation. */
  decode(ids: number[], opts: { skipSpecial?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new TokenizerError(`token id ${id} is not in the vocabulary (0..${this.vocabSize - 1})`);
    }
    if (ids.length === 0) return ''; // the port refuses an empty list
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  /** The prompt string from the model's chat template (jinja); addGenerationPrompt adds the assistant header. */
  renderChat(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (this.chatTemplate === undefined) throw new TokenizerError('this model has no chat template');
    try {
      this.template ??= new Template(this.chatTemplate);
      return this.template.render({
        messages,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        bos_token: this.bosId === undefined ? '' : this.tok.id_to_token(this.bosId),
        eos_token: this.tok.id_to_token(this.eosId),
      });
    } catch (err) {
      throw new TokenizerError(`chat template: ${(err as Error).message}`);
    }
  }

  /** A tokenizer.json object (Hugging Face format) equivalent to this tokenizer, and its tokenizer_config.json. */
  toHfFiles(): { tokenizer: object; tokenizerConfig: object } {
    return { tokenizer: structuredClone(this.tokenizerJson), tokenizerConfig: structuredClone(this.tokenizerConfig) };
  }

  /**
   * The GGUF tokenizer.* metadata: a GGUF's own, unchanged; built from tokenizer.json (as llama.cpp's
   * converter does) when the tokenizer is a byte-level BPE with a pre-tokenizer llama.cpp knows.
   */
  toGgufMetadata(): Record<string, GgufEntry> {
    if (this.gguf) return structuredClone(this.gguf);
    return ggufFromHf(this.tokenizerJson, this.tokenizerConfig, this.tok, this.vocabSize, { bos: this.bosId, eos: this.eosId });
  }
}

/** From a HF directory's tokenizer.json (+ tokenizer_config.json, which holds the chat template and bos/eos names). */
export function tokenizerFromHf(tokenizerJson: object, tokenizerConfig: object): PretrainedTokenizer {
  return new PretrainedTokenizer(structuredClone(tokenizerJson) as Json, structuredClone(tokenizerConfig) as Json);
}

/** From a GGUF file's tokenizer.* metadata: builds the equivalent tokenizer.json and tokenizer_config.json and loads them. */
export function tokenizerFromGguf(metadata: Record<string, GgufEntry>): PretrainedTokenizer {
  const get = (key: string): unknown => (Object.hasOwn(metadata, key) ? metadata[key].value : undefined);
  const model = get('tokenizer.ggml.model');
  if (model !== 'gpt2') {
    throw new TokenizerError(
      `tokenizer.ggml.model "${String(model)}" is not supported: only "gpt2" (byte-level BPE) is` +
        (model === 'llama' ? '; "llama" is a SentencePiece tokenizer' : ''),
    );
  }
  // llama.cpp treats a missing pre as "default" (with a warning that quality degrades).
  const pre = get('tokenizer.ggml.pre') ?? 'default';
  const kindName = typeof pre === 'string' && Object.hasOwn(PRE_NAMES, pre) ? PRE_NAMES[pre] : undefined;
  if (!kindName)
    throw new TokenizerError(`tokenizer.ggml.pre "${String(pre)}" is not supported (supported: ${Object.keys(PRE_NAMES).join(', ')})`);
  const kind: PreKind = PRE_KINDS[kindName];

  const tokens = stringArray(get('tokenizer.ggml.tokens'), 'tokenizer.ggml.tokens');
  const merges = stringArray(get('tokenizer.ggml.merges'), 'tokenizer.ggml.merges');
  const types = get('tokenizer.ggml.token_type') ?? [];
  if (!Array.isArray(types)) throw new TokenizerError('tokenizer.ggml.token_type is not an array');
  const id = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n >= tokens.length)
      throw new TokenizerError(`${key} ${String(v)} is not a token id (${tokens.length} tokens)`);
    return n;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  if (eos === undefined) throw new TokenizerError('tokenizer.ggml.eos_token_id is missing');
  const unk = id('tokenizer.ggml.unknown_token_id');
  const pad = id('tokenizer.ggml.padding_token_id');
  const addBos = get('tokenizer.ggml.add_bos_token');
  const chatTemplate = get('tokenizer.chat_template');

  // llama.cpp splits the text at control, unknown and user-defined tokens before the BPE: tokenizer.json's
  // added_tokens, special except user-defined ones (which decode as text and survive skipSpecial).
  const added: Json[] = [];
  types.forEach((t, i) => {
    const type = Number(t);
    if (type !== TOKEN_TYPE.control && type !== TOKEN_TYPE.unknown && type !== TOKEN_TYPE.userDefined) return;
    const special = type !== TOKEN_TYPE.userDefined;
    added.push({ id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  });
  // A null-prototype object, so a token such as "__proto__" is an ordinary key; a repeated token maps to its last id, as in llama.cpp.
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => (vocab[t] = i));

  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: hfPreTokenizer(kindName),
    post_processor:
      (addBos ?? kind.addBos) && bos !== undefined
        ? bosTemplate(bos, tokens[bos])
        : { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      // No unk token: a byte the vocabulary lacks (SmolLM2 has no token for 21 of the 256, e.g. U+0004) is
      // dropped, as llama.cpp does; Hugging Face would emit the unk token there.
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: kind.ignoreMerges,
      vocab,
      merges: merges.map(splitMerge),
    },
  };
  const tokenizerConfig: Json = {
    add_bos_token: addBos ?? kind.addBos,
    add_eos_token: get('tokenizer.ggml.add_eos_token') ?? false,
    added_tokens_decoder: Object.fromEntries(added.map(({ id: i, ...t }) => [String(i), t])),
    bos_token: bos === undefined ? null : tokens[bos],
    eos_token: tokens[eos],
    unk_token: unk === undefined ? null : tokens[unk],
    ...(pad === undefined ? {} : { pad_token: tokens[pad] }),
    ...(typeof chatTemplate === 'string' ? { chat_template: chatTemplate } : {}),
    clean_up_tokenization_spaces: false,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const gguf = Object.fromEntries(Object.entries(metadata).filter(([k]) => k.startsWith('tokenizer.')));
  return new PretrainedTokenizer(tokenizerJson, tokenizerConfig, structuredClone(gguf));
}

/** The GGUF metadata llama.cpp's converter writes for a byte-level BPE tokenizer.json. */
function ggufFromHf(
  json: Json,
  config: Json,
  tok: Tokenizer,
  vocabSize: number,
  ids: { bos?: number; eos: number },
): Record<string, GgufEntry> {
  const model = isObject(json.model) ? json.model : {};
  const kind = preKindOf(splitRegexes(json.pre_tokenizer), model.ignore_merges === true);
  const normalizer = isObject(json.normalizer) ? json.normalizer.type : null;
  const decoder = isObject(json.decoder) ? json.decoder.type : null;
  // llama.cpp has no normalizer step; Qwen2's NFC is dropped by its converter too.
  if (!kind || decoder !== 'ByteLevel' || (normalizer !== null && normalizer !== 'NFC')) {
    throw new TokenizerError(
      `tokenizer.json: only byte-level BPE with one of these pre-tokenizers can be written to GGUF: ${Object.keys(PRE_KINDS).join(', ')}`,
    );
  }
  const added = tok.get_added_tokens_decoder();
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const t = tok.id_to_token(i);
    const a = added.get(i);
    // Ids nobody uses get a placeholder, as the converter writes them.
    tokens.push(t ?? `[PAD${i}]`);
    types.push(t === undefined ? TOKEN_TYPE.unused : a ? (a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined) : TOKEN_TYPE.normal);
  }
  const merges = (Array.isArray(model.merges) ? model.merges : []).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  const entries: Record<string, GgufEntry> = {
    'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
    'tokenizer.ggml.pre': { type: 'string', value: kind },
    'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: tokens },
    'tokenizer.ggml.token_type': { type: 'array', itemType: 'i32', value: types },
    'tokenizer.ggml.merges': { type: 'array', itemType: 'string', value: merges },
    ...(ids.bos === undefined ? {} : { 'tokenizer.ggml.bos_token_id': { type: 'u32', value: ids.bos } }),
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: ids.eos },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: config.add_bos_token === true },
  };
  const chatTemplate = chatTemplateOf(config.chat_template);
  if (chatTemplate !== undefined) entries['tokenizer.chat_template'] = { type: 'string', value: chatTemplate };
  return entries;
}

/** Whether a post_processor (Llama 3's TemplateProcessing, possibly inside a Sequence) puts `token` before the text. */
function prependsToken(post: unknown, token: string): boolean {
  if (!isObject(post)) return false;
  if (post.type === 'Sequence' && Array.isArray(post.processors)) return post.processors.some((p) => prependsToken(p, token));
  const first: unknown = post.type === 'TemplateProcessing' && Array.isArray(post.single) ? post.single[0] : undefined;
  return isObject(first) && isObject(first.SpecialToken) && first.SpecialToken.id === token;
}

/** A merge "a b" as [a, b], split at the first space after the first character as llama.cpp does. */
function splitMerge(m: string): [string, string] {
  const at = m.indexOf(' ', 1);
  if (at < 0) throw new TokenizerError(`tokenizer.ggml.merges: "${m}" is not two tokens separated by a space`);
  return [m.slice(0, at), m.slice(at + 1)];
}

function bosTemplate(id: number, token: string): Json {
  const bos = { SpecialToken: { id: token, type_id: 0 } };
  return {
    type: 'TemplateProcessing',
    single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, bos, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [token]: { id: token, ids: [id], tokens: [token] } },
  };
}

function stringArray(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new TokenizerError(`${key} is missing or not an array of strings`);
  return v as string[];
}

/** A token named in tokenizer_config.json: a string or an AddedToken object ({content}). */
function tokenName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** chat_template is a string, or a list of named templates of which "default" is the chat one. */
function chatTemplateOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const t = v.find((x: unknown) => isObject(x) && x.name === 'default');
    return isObject(t) && typeof t.template === 'string' ? t.template : undefined;
  }
  return undefined;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
