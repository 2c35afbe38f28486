/**
 * Character-level tokenizer: printable ASCII (32..126) and '\n', plus five special tokens.
 * Ids: PAD=0 BOS=1 RESP=2 ANS=3 EOS=4, '\n'=5, ' '..'~' = 6..100. VOCAB_SIZE = 101.
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
export const VOCAB_SIZE = FIRST_PRINTABLE_ID + (126 - 32 + 1);

export function isSpecial(id: number): boolean {
  return id < NEWLINE_ID;
}

/** Text -> ids. Throws on a character outside the alphabet, naming it and its position. */
export function encode(text: string): number[] {
  const ids = new Array<number>(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) ids[i] = NEWLINE_ID;
    else if (c >= 32 && c <= 126) ids[i] = FIRST_PRINTABLE_ID + c - 32;
    else throw new Error(`tokenizer: unknown character ${JSON.stringify(text[i])} (code ${c}) at position ${i}`);
  }
  return ids;
}

/**
 * Ids -> text. Special tokens are an error unless `specials` says how to show them:
 * 'skip' drops them, 'show' writes them as <NAME> (for logs; not invertible).
 */
export function decode(ids: ArrayLike<number>, specials: 'error' | 'skip' | 'show' = 'error'): string {
  let out = '';
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) throw new Error(`tokenizer: id ${id} at position ${i} is out of range`);
    if (id === NEWLINE_ID) out += '\n';
    else if (id >= FIRST_PRINTABLE_ID) out += String.fromCharCode(id - FIRST_PRINTABLE_ID + 32);
    else if (specials === 'show') out += `<${SPECIAL_NAMES[id]}>`;
    else if (specials === 'error') throw new Error(`tokenizer: special token ${SPECIAL_NAMES[id]} at position ${i}`);
  }
  return out;
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

/** The model's input for a prompt: [BOS] prompt [RESP]. Generation continues from here. */
export function encodePrompt(prompt: string): number[] {
  return [BOS, ...encode(prompt), RESP];
}

export function buildExample(t: Trace): Example {
  const prompt = encodePrompt(t.prompt);
  const response = [...encode(t.reasoning), ANS, ...encode(t.answer + t.verification), EOS];
  return {
    tokens: [...prompt, ...response],
    lossMask: [...prompt.map(() => 0), ...response.map(() => 1)],
  };
}

export interface ParsedResponse {
  /** Text before the ANS cue (all of it when there is none). */
  reasoning: string;
  /** Text after the ANS cue up to EOS: the answer followed by its verification; null without ANS. */
  answer: string | null;
  /** The response ended with EOS (rather than being cut). */
  stopped: boolean;
}

/** Splits generated response ids (everything after RESP) at the first ANS and the first EOS. */
export function parseResponse(ids: ArrayLike<number>): ParsedResponse {
  const all = Array.from(ids);
  const eos = all.indexOf(EOS);
  const body = eos < 0 ? all : all.slice(0, eos);
  const ans = body.indexOf(ANS);
  const text = (xs: number[]) => decode(xs, 'skip');
  return {
    reasoning: text(ans < 0 ? body : body.slice(0, ans)),
    answer: ans < 0 ? null : text(body.slice(ans + 1)),
    stopped: eos >= 0,
  };
}
