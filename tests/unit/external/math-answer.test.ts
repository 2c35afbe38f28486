import { describe, expect, it } from 'vitest';
import { answersMatch, checkAnswer, extractAnswer, parseRational } from '../../../tasks/math-answer';

// [model text, reference answer, correct?]
const TABLE: [string, string, boolean][] = [
  // fractions, decimals, LaTeX spellings of one half
  ['\\boxed{1/2}', '0.5', true],
  ['\\boxed{0.5}', '\\frac{1}{2}', true],
  ['\\boxed{\\frac12}', '1/2', true],
  ['\\boxed{\\dfrac{1}{2}}', '0.5', true],
  ['\\boxed{\\tfrac{1}{2}}', '\\frac12', true],
  ['\\boxed{\\frac{2}{4}}', '1/2', true],
  ['\\boxed{.5}', '1/2', true],
  ['\\boxed{0.50}', '\\frac{1}{2}', true],
  ['\\boxed{0.3333}', '1/3', false],
  ['\\boxed{0.33}', '\\frac{1}{3}', false],
  ['\\boxed{1/3}', '\\frac{1}{3}', true],
  ['\\boxed{-\\frac{1}{2}}', '-0.5', true],
  ['\\boxed{\\frac{-1}{2}}', '-1/2', true],
  ['\\boxed{\\frac{1}{2}}', '-1/2', false],
  ['\\boxed{\\frac{3}{2}}', '1\\frac{1}{2}', false],
  ['\\boxed{\\frac{1}{0}}', '0', false],
  ['\\boxed{\\frac{1.5}{3}}', '0.5', true],
  // integers
  ['\\boxed{12}', '12.0', true],
  ['\\boxed{12.0}', '12', true],
  ['\\boxed{3}', '33', false],
  ['\\boxed{33}', '3', false],
  ['\\boxed{+7}', '7', true],
  ['\\boxed{-7}', '7', false],
  ['\\boxed{007}', '7', true],
  ['\\boxed{123456789012345678901234567890}', '123456789012345678901234567891', false],
  ['\\boxed{123456789012345678901234567890}', '123456789012345678901234567890.0', true],
  ['\\boxed{12.000001}', '12', false],
  // thousands separators, spacing, dollars, trailing period
  ['\\boxed{1,000}', '1000', true],
  ['\\boxed{1{,}000{,}000}', '1000000', true],
  ['\\boxed{1\\,000}', '1000', true],
  ['\\boxed{1,5}', '1.5', false],
  ['\\boxed{1, 234}', '1234', false],
  ['\\boxed{2 3}', '23', false],
  ['The answer is $\\$ 42$.', '42', true],
  ['\\boxed{ 5 }', '5', true],
  ['Answer: 5.', '5', true],
  // \text{} units and percent
  ['\\boxed{5\\text{ cm}}', '5', true],
  ['\\boxed{5}', '5\\text{ cm}', true],
  ['\\boxed{5\\text{ m}}', '5\\text{ cm}', false],
  ['\\boxed{5\\mbox{ cm}}', '5\\text{cm}', true],
  ['\\boxed{30^\\circ}', '30', true],
  ['\\boxed{50\\%}', '50\\%', true],
  ['\\boxed{50}', '50\\%', true],
  ['\\boxed{50\\%}', '50', false],
  ['\\boxed{50\\%}', '0.5', false],
  ['\\boxed{\\text{(C)}}', '(C)', true],
  ['\\boxed{\\text{(C)}}', '(D)', false],
  // left/right, spacing commands, variables, non-numeric answers
  ['\\boxed{\\left( 1, 2 \\right)}', '(1,2)', true],
  ['\\boxed{(2,1)}', '(1,2)', false],
  ['\\boxed{x = 5}', '5', true],
  ['\\boxed{5}', 'x=5', true],
  ['\\boxed{y = 5}', 'x = 5', false],
  ['\\boxed{\\frac{\\sqrt3}{2}}', '\\frac{\\sqrt{3}}{2}', true],
  ['\\boxed{\\frac{\\sqrt{3}}{2}}', '\\frac{\\sqrt{2}}{2}', false],
  ['\\boxed{x^{2} + 1}', 'x^2+1', true],
  ['\\boxed{x^2 - 1}', 'x^2+1', false],
  ['\\boxed{2\\!\\sqrt{2}}', '2\\sqrt{2}', true],
  ['\\boxed{\\pi}', '3.14', false],
  ['\\boxed{1.5e3}', '1500', false],
  ['\\boxed{\\text{Yes}}', 'yes', false],
  // extraction: nested braces, several boxes, cues, truncation, <ANS>, nothing
  ['so $\\boxed{\\frac{1}{\\sqrt{4}}}$ is it', '\\frac{1}{\\sqrt{4}}', true],
  ['first \\boxed{3} then corrected: \\boxed{4}', '4', true],
  ['first \\boxed{4} then corrected: \\boxed{3}', '4', false],
  ['\\boxed{4} ... \\boxed{\\frac{1}{2', '4', false],
  ['\\boxed{}', '0', false],
  ['Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.', '0.5', true],
  ['**Answer:** 17', '17', true],
  ['Answer:\n17', '17', true],
  ['answer: 17 because 16 + 1', '17', false],
  ['the sum is 17', '17', false],
  ['', '17', false],
  ['12+10<ANS>22\nchk 12+10=22 ok<EOS>', '22', true],
  ['12+10<ANS>23\nchk 12+10=23 ok<EOS>', '22', false],
  ['<ANS>', '22', false],
];

describe('math answer checker', () => {
  it('has a table of at least 50 pairs with both outcomes', () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(50);
    expect(TABLE.filter((r) => r[2]).length).toBeGreaterThan(20);
    expect(TABLE.filter((r) => !r[2]).length).toBeGreaterThan(20);
  });

  it.each(TABLE)('%j vs %j -> %s', (text, reference, correct) => {
    expect(checkAnswer(text, reference).correct).toBe(correct);
  });

  it('extracts the last box with nested braces, cue lines and <ANS> lines', () => {
    expect(extractAnswer('\\boxed{1} and \\boxed{\\frac{a}{b^{2}}}')).toBe('\\frac{a}{b^{2}}');
    expect(extractAnswer('The final answer is 7')).toBe('7');
    expect(extractAnswer('Natalia sold 48/2 = 24 clips in May.\n#### 72')).toBe('72'); // GSM8K's worked solutions
    expect(extractAnswer('#### \n')).toBeNull();
    expect(extractAnswer('Answer: 7\n<ANS>8')).toBe('7');
    expect(extractAnswer('reasoning<ANS> 8 \nchk')).toBe('8');
    expect(extractAnswer('no answer here')).toBeNull();
    expect(extractAnswer('\\boxed{5')).toBeNull();
  });

  it('compares rationals exactly', () => {
    expect(parseRational('0.125')).toEqual({ n: 1n, d: 8n });
    expect(parseRational('-6/4')).toEqual({ n: -3n, d: 2n });
    expect(parseRational('abc')).toBeNull();
    expect(answersMatch('0.1', '1/10')).toBe(true);
    expect(answersMatch('0.30000000000000004', '0.3')).toBe(false);
  });
});
