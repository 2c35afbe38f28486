import { describe, expect, it } from 'vitest';
import {
  ANS,
  BOS,
  EOS,
  PAD,
  RESP,
  VOCAB_SIZE,
  BASE_TOKENIZER,
  Tokenizer,
  buildExample,
  decode,
  encode,
  encodePrompt,
  parseResponse,
  tokenizerOf,
} from '../../../model/tokenizer';
import { alphabetMismatch, modelConfig } from '../../../model/config';

describe('tokenizer', () => {
  const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('') + '\n';

  it('round-trips every character of the alphabet exactly', () => {
    const text = printable + 'What is 12+30?\n  Answer: 42 ~{}|\\"`\n';
    const ids = encode(text);
    expect(ids).toHaveLength(text.length);
    expect(decode(ids)).toBe(text);
    expect(new Set(encode(printable)).size).toBe(96);
    expect(Math.max(...encode(printable))).toBe(VOCAB_SIZE - 1);
    expect(Math.min(...encode(printable))).toBeGreaterThan(EOS);
  });

  it('names an unknown character and its position', () => {
    expect(() => encode('ab\tc')).toThrow(/"\\t".*position 2/);
    expect(() => encode('x=é')).toThrow(/"é".*position 2/);
  });

  it('refuses special tokens in decode unless asked to skip or show them', () => {
    const ids = [BOS, ...encode('hi'), EOS];
    expect(() => decode(ids)).toThrow(/BOS at position 0/);
    expect(decode(ids, 'skip')).toBe('hi');
    expect(decode(ids, 'show')).toBe('<BOS>hi<EOS>');
    expect(() => decode([VOCAB_SIZE])).toThrow(/out of range/);
  });

  it('builds [BOS] prompt [RESP] reasoning [ANS] answer verification [EOS] with the loss on the response', () => {
    const ex = buildExample({ prompt: '2+2', reasoning: 'r', answer: '4', verification: ' ok' });
    expect(ex.tokens).toEqual([BOS, ...encode('2+2'), RESP, ...encode('r'), ANS, ...encode('4 ok'), EOS]);
    expect(ex.lossMask).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    expect(encodePrompt('2+2')).toEqual(ex.tokens.slice(0, 5));
  });

  it('parses a generated response at ANS and EOS', () => {
    const response = [...encode('think'), ANS, ...encode('42 checked'), EOS, PAD];
    expect(parseResponse(response)).toEqual({ reasoning: 'think', answer: '42 checked', stopped: true });
    expect(parseResponse(encode('no answer yet'))).toEqual({ reasoning: 'no answer yet', answer: null, stopped: false });
  });

  it('extends the base alphabet with the extra characters of a campaign, ids after the base ones, base ids unchanged', () => {
    const t = new Tokenizer('\u03c0\u221a\u{1d465}');
    expect(t.vocabSize).toBe(VOCAB_SIZE + 3);
    const text = 'What is \u221a4 * \u03c0 + \u{1d465}?\n';
    const ids = t.encode(text);
    expect(ids.filter((id) => id >= VOCAB_SIZE)).toEqual([VOCAB_SIZE + 1, VOCAB_SIZE, VOCAB_SIZE + 2]);
    expect(t.decode(ids)).toBe(text);
    expect(t.encode(printable)).toEqual(encode(printable));
    expect(t.parseResponse([...t.encode('r=\u03c0'), ANS, ...t.encode('\u03c0'), EOS])).toEqual({
      reasoning: 'r=\u03c0',
      answer: '\u03c0',
      stopped: true,
    });
    expect(() => t.encode('\u00e9')).toThrow(/"\u00e9".*position 0/);
    expect(() => BASE_TOKENIZER.decode(ids)).toThrow(/out of range/);
    expect(() => new Tokenizer('a')).toThrow(/base alphabet/);
    expect(() => new Tokenizer('\u03c0\u03c0')).toThrow(/repeated/);
  });

  it('is recorded by the model config: extraChars sets the vocabulary, one tokenizer per alphabet, and a warm start must share it', () => {
    const c = modelConfig({ extraChars: '\u03c0\u221a' });
    expect(c.vocabSize).toBe(VOCAB_SIZE + 2);
    expect(tokenizerOf(c)).toBe(tokenizerOf({ extraChars: '\u03c0\u221a' }));
    expect(tokenizerOf(modelConfig())).toBe(BASE_TOKENIZER);
    expect(modelConfig()).not.toHaveProperty('extraChars');
    expect(alphabetMismatch(c, modelConfig({ extraChars: '\u03c0\u221a' }))).toBeNull();
    expect(alphabetMismatch(modelConfig(), c)).toBe(
      'model.extraChars: the warm-start checkpoint\'s tokenizer has extra characters none, this campaign\'s data needs "\u03c0\u221a"; warm-start from a checkpoint trained on the same file, or start fresh',
    );
  });
});
