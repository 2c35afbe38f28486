/**
 * Character-level tokenizer: printable ASCII (32..126) and '\n', plus five special tokens, plus the
 * characters a campaign's own problems need beyond ASCII (`extra`, recorded in the model config as
 * `extraChars`, so a checkpoint carries its alphabet).
 * Ids: PAD=0 BOS=1 RESP=2 ANS=3 EOS=4, '\n'=5, ' '..'~' = 6..100, extra[i] = 101 + i. VOCAB_SIZE = 101.
 *
 * A training example is   [BOS] prompt [RESP] reasoning [ANS] answer verification [EOS]
 * and the loss covers the response: every token after RESP, EOS included.
 */
export const PAD = 0;
export const BOS = 1;
export const RESP = 2;
export const ANS = 3;
export const EOS = 4;
const SPECIAL_NAMES = ['PAD', 'BOS', 'RESP', 'ANS', 'EOS'];
const NEWLINE_ID = SPECIAL_NAMES.length;
const FIRST_PRINTABLE_ID = NEWLINE_ID + 1;
/** Size of the base vocabulary (no extra characters). */
export const VOCAB_SIZE = FIRST_PRINTABLE_ID + (126 - 32 + 1);

/** True for the characters every tokenizer has: '\n' and printable ASCII. */
export function isBaseChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return c.length === 1 && (code === 10 || (code >= 32 && code <= 126));
}

/** What a task produces for one problem (all four strings in the tokenizer's alphabet). */
export interface Trace {
  prompt: string;
  reasoning: string;
  answer: string;
  verification: string;
}

export interface Example {
  tokens: number[];
  /** lossMask[i] = 1 where tokens[i] is a response token (after RESP, EOS included), else 0. */
  lossMask: number[];
}

export interface ParsedResponse {
  /** Text before the ANS cue (all of it when there is none). */
  reasoning: string;
  /** Text after the ANS cue up to EOS: the answer followed by its verification; null without ANS. */
  answer: string | null;
  /** The response ended with EOS (rather than being cut). */
  stopped: boolean;
}

export class Tokenizer {
  readonly vocabSize: number;
  private readonly extraIds = new Map<string, number>();
  private readonly extraChars: string[];

  /** `extra`: characters beyond the base alphabet, each once (code points, in id order). */
  constructor(readonly extra = '') {
    this.extraChars = [...extra];
    this.extraChars.forEach((c, i) => {
      if (isBaseChar(c) || this.extraIds.has(c) || /\p{Cc}/u.test(c))
        throw new Error(`tokenizer: extra character ${JSON.stringify(c)} is a control character, in the base alphabet or repeated`);
      this.extraIds.set(c, VOCAB_SIZE + i);
    });
    this.vocabSize = VOCAB_SIZE + this.extraChars.length;
  }

  /** Text -> ids. Throws on a character outside the alphabet, naming it and its position. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    for (const c of text) {
      const code = c.charCodeAt(0);
      const id = code === 10 ? NEWLINE_ID : code >= 32 && code <= 126 ? FIRST_PRINTABLE_ID + code - 32 : this.extraIds.get(c);
      if (id === undefined)
        throw new Error(`tokenizer: unknown character ${JSON.stringify(c)} (code ${c.codePointAt(0)}) at position ${i}`);
      ids.push(id);
      i += c.length;
    }
    return ids;
  }

  /**
   * Ids -> text. Special tokens are an error unless `specials` says how to show them:
   * 'skip' drops them, 'show' writes them as <NAME> (for logs; not invertible).
   */
  decode(ids: ArrayLike<number>, specials: 'error' | 'skip' | 'show' = 'error'): string {
    let out = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new Error(`tokenizer: id ${id} at position ${i} is out of range`);
      if (id === NEWLINE_ID) out += '\n';
      else if (id >= VOCAB_SIZE) out += this.extraChars[id - VOCAB_SIZE];
      else if (id >= FIRST_PRINTABLE_ID) out += String.fromCharCode(id - FIRST_PRINTABLE_ID + 32);
      else if (specials === 'show') out += `<${SPECIAL_NAMES[id]}>`;
      else if (specials === 'error') throw new Error(`tokenizer: special token ${SPECIAL_NAMES[id]} at position ${i}`);
    }
    return out;
  }

  /** The model's input for a prompt: [BOS] prompt [RESP]. Generation continues from here. */
  encodePrompt(prompt: string): number[] {
    return [BOS, ...this.encode(prompt), RESP];
  }

  buildExample(t: Trace): Example {
    const prompt = this.encodePrompt(t.prompt);
    const response = [...this.encode(t.reasoning), ANS, ...this.encode(t.answer + t.verification), EOS];
    return {
      tokens: [...prompt, ...response],
      lossMask: [...prompt.map(() => 0), ...response.map(() => 1)],
    };
  }

  /** Splits generated response ids (everything after RESP) at the first ANS and the first EOS. */
  parseResponse(ids: ArrayLike<number>): ParsedResponse {
    const all = Array.from(ids);
    const eos = all.indexOf(EOS);
    const body = eos < 0 ? all : all.slice(0, eos);
    const ans = body.indexOf(ANS);
    const text = (xs: number[]) => this.decode(xs, 'skip');
    return {
      reasoning: text(ans < 0 ? body : body.slice(0, ans)),
      answer: ans < 0 ? null : text(body.slice(ans + 1)),
      stopped: eos >= 0,
    };
  }
}

/** The alphabet every built-in task lives in. */
export const BASE_TOKENIZER = new Tokenizer();

const byAlphabet = new Map<string, Tokenizer>([['', BASE_TOKENIZER]]);

/** The tokenizer a model config records (`extraChars`), one instance per alphabet. */
export function tokenizerOf(config: { extraChars?: string }): Tokenizer {
  const extra = config.extraChars ?? '';
  let t = byAlphabet.get(extra);
  if (!t) byAlphabet.set(extra, (t = new Tokenizer(extra)));
  return t;
}

export const encode = (text: string) => BASE_TOKENIZER.encode(text);
export const decode = (ids: ArrayLike<number>, specials?: 'error' | 'skip' | 'show') => BASE_TOKENIZER.decode(ids, specials);
export const encodePrompt = (prompt: string) => BASE_TOKENIZER.encodePrompt(prompt);
export const buildExample = (t: Trace) => BASE_TOKENIZER.buildExample(t);
export const parseResponse = (ids: ArrayLike<number>) => BASE_TOKENIZER.parseResponse(ids);
