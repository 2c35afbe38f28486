import { describe, expect, it } from 'vitest';
import { majAtK, majorityVote, type ProblemRecord, type SampleRecord } from '../../../evaluation/metrics';

const s = (answer: string, correct: boolean): SampleRecord => ({ correct, garbage: null, answer, length: 1, steps: 0 });

describe('maj@k votes under the task voteKey', () => {
  it('countdown: three different right expressions of one value outvote a wrong answer given twice', () => {
    // Problem 2 3 4 5 -> 14. Parsed trees differ, so a vote by parsed form splits the right answers 1-1-1 and 5+9 wins 2-1.
    const samples = [s('5+9', false), s('2*(3+4)', true), s('5+9', false), s('(4+3)*2', true), s('2*(4+3)', true)];
    const problem: ProblemRecord = { task: 'countdown', id: 'c', difficulty: 4, samples };
    expect(majorityVote('countdown', samples, 5)).toBe(1);
    expect(majAtK([problem], 5)).toBe(1);
    // Over the first 4 the right answers tie the wrong one 2-2, and the wrong one came first.
    expect(majAtK([problem], 4)).toBe(0);
  });

  it('countdown: an answer of the right value from other numbers does not join the right answers', () => {
    // Problem 3 4 6 -> 7: `3+3+1` and `7` equal 7 but break the rules. Pooled by value alone, the first sample (wrong) would stand for all four.
    const samples = [s('3+3+1', false), s('3+4', true), s('4+3', true), s('7', false)];
    expect(majorityVote('countdown', samples, 4)).toBe(1);
    expect(majAtK([{ task: 'countdown', id: 'c', difficulty: 3, samples }], 4)).toBe(1);
  });

  it('jsonl: 1/2 and 0.5 are one answer', () => {
    const samples = [s('2', false), s('1/2', true), s('2', false), s('0.5', true), s('\\frac{1}{2}', true)];
    expect(majorityVote('jsonl', samples, 5)).toBe(1);
    expect(majorityVote('jsonl', samples, 4)).toBe(0); // 2-2: 2 came first
  });
});
