import { describe, expect, it } from 'vitest';
import { Prng } from '../../../util/prng';
import { bin, countOps, leaves, num, parseExpr, show, type Expr, type Op } from '../../../tasks/expr';
import { evalRational } from '../../../tasks/rational';

function randomTree(rng: Prng, ops: number): Expr {
  if (ops === 0) return num(1 + rng.int(20));
  const left = rng.int(ops);
  return bin(rng.pick<Op>(['+', '-', '*', '/']), randomTree(rng, left), randomTree(rng, ops - 1 - left));
}

const value = (e: Expr) => {
  const r = evalRational(e);
  return r && `${r.n}/${r.d}`;
};

describe('expression printer and parser', () => {
  it('prints the fewest parentheses and parses back to the same exact value', () => {
    const rng = new Prng(11);
    for (let i = 0; i < 3000; i++) {
      const tree = randomTree(rng, 1 + rng.int(6));
      const text = show(tree);
      const back = parseExpr(text)!;
      expect(back, text).not.toBeNull();
      expect(value(back), text).toBe(value(tree));
      expect(leaves(back)).toEqual(leaves(tree));
      expect(countOps(back)).toBe(countOps(tree));
      expect(show(back)).toBe(text); // printing is canonical for what it prints
    }
    expect(show(bin('-', num(9), bin('+', num(3), num(2))))).toBe('9-(3+2)');
    expect(show(bin('+', num(9), bin('-', num(3), num(2))))).toBe('9+3-2');
    expect(show(bin('/', num(8), bin('*', num(2), num(2))))).toBe('8/(2*2)');
    expect(show(bin('*', bin('+', num(1), num(2)), num(3)))).toBe('(1+2)*3');
  });

  it('tolerates spacing and operator spellings', () => {
    for (const text of [' 7 * 5 - 3 - 10 ', '7×5−3–10', '7x5-3-10', '7X5-3-10', '7·5-3-10', '((7*5))-3-10']) {
      expect(value(parseExpr(text)!), text).toBe('22/1');
    }
    expect(value(parseExpr('20÷4')!)).toBe('5/1');
  });

  it('rejects malformed text', () => {
    for (const text of [
      '',
      ' ',
      '7*',
      '*7',
      '-3+10',
      '+3',
      '7 5',
      '(7*5',
      '7*5)',
      '()',
      '7**5',
      '07+1',
      '7.5',
      '7^2',
      'a',
      '7=7',
      '1'.repeat(16),
      '('.repeat(100) + '1' + ')'.repeat(100),
    ]) {
      expect(parseExpr(text), JSON.stringify(text)).toBeNull();
    }
  });
});
