import { describe, expect, it } from 'vitest';
import { ANS, BOS, EOS, PAD, RESP, VOCAB_SIZE, buildExample, decode, encode, encodePrompt, parseResponse } from '../../../model/tokenizer';

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
});
