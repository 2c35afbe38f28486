import { describe, expect, it } from 'vitest';
import { ANS, EOS, buildExample, encode } from '../../../model/tokenizer';
import { rlConfig } from '../../../rl/config';
import { judge, overlongPenalty, repeatFraction } from '../../../rl/reward';
import { getTask } from '../../../tasks/registry';
import { writeTrace } from '../../../tasks/teacher';
import { problemId, type Problem } from '../../../tasks/types';
import { Prng } from '../../../util/prng';

const g = rlConfig().garbage;
const sum: Problem = { task: 'arithmetic', id: problemId('arithmetic', '3+4'), prompt: '3+4', difficulty: 1, data: { value: 7 } };
const resp = (reasoning: string, answer?: string, stop = true) => [
  ...encode(reasoning),
  ...(answer === undefined ? [] : [ANS, ...encode(answer)]),
  ...(stop ? [EOS] : []),
];

describe('judge', () => {
  it('a clean right response: r = 1, no garbage, the verification line is not part of the answer', () => {
    const j = judge(sum, resp('try 3+4=8\nno: 3+4 is 7, not 8\ntry 3+4=7\n', '7\nchk 3+4=7 ok'), g);
    expect(j).toEqual({ correct: true, garbage: null, answer: '7', steps: 3 });
  });

  it('a clean wrong response: r = 0, no garbage', () => {
    expect(judge(sum, resp('try 3+4=8\n', '8\nchk 3+4=8 ok'), g)).toMatchObject({ correct: false, garbage: null });
  });

  it('cut at the limit before a complete answer line: truncated', () => {
    expect(judge(sum, resp('try 3+4=7\ntr', undefined, false), g)).toMatchObject({ correct: false, garbage: 'truncated', answer: null });
    // '7' might have gone on to '71': an unfinished answer line is not trusted
    expect(judge(sum, resp('try 3+4=7\n', '7', false), g)).toMatchObject({ correct: false, garbage: 'truncated' });
    // cut inside the verification line: the answer line is complete
    expect(judge(sum, resp('try 3+4=7\n', '7\nchk 3+', false), g)).toMatchObject({ correct: true, garbage: null });
  });

  it('a looping response: repetition, even with the right answer', () => {
    const j = judge(sum, resp('try 3+4=7\n'.repeat(8), '7'), g);
    expect(j).toMatchObject({ correct: true, garbage: 'repetition' });
    expect(repeatFraction(encode('try 3+4=7\n'.repeat(8)), 8)).toBeCloseTo((80 - 7 - 10) / (80 - 7), 12);
  });

  it('stopped without an answer, or an answer of the wrong form: unparseable', () => {
    expect(judge(sum, resp('try 3+4=7\n'), g)).toMatchObject({ correct: false, garbage: 'unparseable', answer: null });
    expect(judge(sum, resp('try 3+4=7\n', 'seven'), g)).toMatchObject({ correct: false, garbage: 'unparseable', answer: 'seven' });
    expect(judge(sum, [EOS], g)).toMatchObject({ garbage: 'unparseable' });
  });

  it('repeatFraction: 0 for short or distinct input, a configurable n', () => {
    expect(repeatFraction([1, 2, 3], 8)).toBe(0);
    expect(repeatFraction([1, 2, 3, 4, 5, 6], 2)).toBe(0);
    expect(repeatFraction([1, 1, 1, 1, 1], 2)).toBeCloseTo(3 / 4, 12);
  });

  it('teacher traces of both tasks are right and never garbage', () => {
    const rng = new Prng(11);
    for (const name of ['countdown', 'arithmetic'] as const) {
      const task = getTask(name);
      for (let i = 0; i < 300; i++) {
        const problem = task.generate(rng, task.minDifficulty + rng.int(task.maxDifficulty - task.minDifficulty + 1));
        const trace = writeTrace(problem, rng.fork(problem.id));
        if (!trace) continue;
        const ex = buildExample({ prompt: problem.prompt, ...trace });
        const response = ex.tokens.filter((_, k) => ex.lossMask[k] === 1);
        expect(judge(problem, response, g), problem.prompt).toMatchObject({ correct: true, garbage: null, steps: trace.steps });
      }
    }
  });
});

describe('overlongPenalty (DAPO soft overlong punishment)', () => {
  const L = 20;
  it('0 up to L - Lc tokens, linear to -penalty at L, -penalty beyond', () => {
    const cfg = { bufferTokens: 5, penalty: 1 };
    // L - Lc = 15: free through 15; 16 -> (15 - 16) / 5; 18 -> -3 / 5; 20 -> -5 / 5.
    expect([0, 14, 15, 16, 18, 19, 20, 21, 40].map((n) => overlongPenalty(n, L, cfg))).toEqual([0, 0, 0, -0.2, -0.6, -0.8, -1, -1, -1]);
  });

  it('scales with penalty; bufferTokens 0 turns it off; a buffer of the whole limit starts at the first token', () => {
    expect([16, 20, 25].map((n) => overlongPenalty(n, L, { bufferTokens: 5, penalty: 0.5 }))).toEqual([-0.1, -0.5, -0.5]);
    expect([0, 20, 21].map((n) => overlongPenalty(n, L, { bufferTokens: 0, penalty: 1 }))).toEqual([0, 0, 0]);
    expect([0, 1, 10, 20].map((n) => overlongPenalty(n, L, { bufferTokens: 20, penalty: 1 }))).toEqual([0, -0.05, -0.5, -1]);
  });
});
