import { describe, expect, it } from 'vitest';
import { getTask } from '../../../tasks/registry';
import { problemId, type Problem } from '../../../tasks/types';

const countdown = getTask('countdown');
const arithmetic = getTask('arithmetic');

function cd(numbers: number[], target: number): Problem {
  const prompt = `${numbers.join(' ')} -> ${target}`;
  return { task: 'countdown', id: problemId('countdown', prompt), prompt, difficulty: numbers.length, data: { numbers, target } };
}

function ar(prompt: string, value: number): Problem {
  return { task: 'arithmetic', id: problemId('arithmetic', prompt), prompt, difficulty: 1, data: { value } };
}

describe('countdown verifier', () => {
  const p = cd([3, 5, 7, 10], 22);

  it('accepts right answers in any tolerated format, not all numbers required', () => {
    for (const a of [
      '7*5-3-10',
      '(7*5)-3-10',
      ' 7 * 5 - 3 - 10 ',
      '7×5−3−10',
      '7x5-3-10',
      '7*5-3-10=22',
      '7*5-3-10 = 22 ',
      '10+7+5',
      '(10+7)+5',
    ]) {
      expect(countdown.verify(p, a), a).toBe(true);
    }
  });

  it('uses exact rationals: fractional intermediates count, division by zero invalidates', () => {
    expect(countdown.verify(cd([1, 3, 4, 6], 24), '6/(1-3/4)')).toBe(true);
    expect(countdown.verify(cd([3, 4, 5, 8], 10), '5/4*8')).toBe(true);
    expect(countdown.verify(cd([2, 3, 5], 2), '5/2')).toBe(false); // 5/2 is not 2
    const z = cd([1, 2, 4, 6, 10], 10);
    expect(countdown.verify(z, '10+1*(6-2-4)')).toBe(true);
    expect(countdown.verify(z, '10+1/(6-2-4)')).toBe(false); // same numbers, but 1/0
  });

  it('rejects reused, ungiven and concatenated numbers', () => {
    expect(countdown.verify(p, '7*3+7-3-3')).toBe(false);
    expect(countdown.verify(p, '5*5-3')).toBe(false);
    expect(countdown.verify(p, '7/7*22')).toBe(false);
    expect(countdown.verify(p, '22')).toBe(false);
    expect(countdown.verify(p, '11*2')).toBe(false);
    expect(countdown.verify(p, '35-3-10')).toBe(false); // 3 and 5 run together
    expect(countdown.verify(cd([2, 7, 9], 7), '7/2*2')).toBe(false);
    expect(countdown.verify(cd([3, 3, 8], 17), '3*3+8')).toBe(true); // a number given twice may be used twice
    expect(countdown.verify(cd([3, 3, 8], 20), '3*3+8+3')).toBe(false);
  });

  it('rejects wrong targets and wrong claims', () => {
    expect(countdown.verify(p, '7*5-3')).toBe(false);
    expect(countdown.verify(p, '7*5-3-10=23')).toBe(false);
    expect(countdown.verify(p, '7*5-3=22')).toBe(false);
    expect(countdown.verify(p, '7*5-3-10=22=22')).toBe(false);
    expect(countdown.verify(p, '7*5-3-10=022')).toBe(false);
  });

  it('rejects malformed answers', () => {
    for (const a of [
      '',
      '   ',
      '7*5-3-10\nchk',
      '7*5-(3-10',
      '7*5--3-10',
      '-3+10+7+5+3',
      '7*5-3-10 ok',
      'try 7*5-3-10',
      '7,5',
      '22=7*5-3-10',
      '7*5-3-10=',
      '=22',
      '7*5-3-10=22.0',
    ]) {
      expect(countdown.verify(p, a), JSON.stringify(a)).toBe(false);
    }
    expect(countdown.parseAnswer('7*5-(3')).toBeNull();
    expect(countdown.parseAnswer('7*5-3-10 = 22')).toMatchObject({ claimed: 22 });
    expect(countdown.parseAnswer('7*5-3-10')).toMatchObject({ claimed: null });
  });
});

describe('arithmetic verifier', () => {
  const p = ar('12+7*(3-5)', -2);

  it('accepts the integer in tolerated formats', () => {
    for (const a of ['-2', ' -2 ', '−2', '- 2', '=-2', '= -2']) expect(arithmetic.verify(p, a), a).toBe(true);
    expect(arithmetic.verify(ar('3+4', 7), '+7')).toBe(true);
    expect(arithmetic.verify(ar('3-3', 0), '0')).toBe(true);
    expect(arithmetic.verify(ar('3-3', 0), '-0')).toBe(true);
  });

  it('rejects wrong or malformed answers', () => {
    for (const a of ['2', '-3', '', '-', '-2.0', '-02', '12+7*(3-5)', '-2-0', '-2 ok', '--2', 'two', '-2=-2', '1e3']) {
      expect(arithmetic.verify(p, a), JSON.stringify(a)).toBe(false);
    }
    expect(arithmetic.parseAnswer('x')).toBeNull();
    expect(arithmetic.parseAnswer(' 14 ')).toBe(14);
  });
});
