import { describe, expect, it } from 'vitest';
import { DataOrder } from '../../../training/data';
import { Prng } from '../../../util/prng';

describe('DataOrder', () => {
  it('visits every example once per epoch, in a seed-determined order', () => {
    const order = new DataOrder(10, new Prng(1));
    const epoch0 = order.take(10);
    const epoch1 = order.take(10);
    expect([...epoch0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...epoch1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(epoch1).not.toEqual(epoch0);
    expect(order.cursor).toEqual({ epoch: 1, index: 10 });
    expect(new DataOrder(10, new Prng(1)).take(20)).toEqual([...epoch0, ...epoch1]);
    expect(new DataOrder(10, new Prng(2)).take(10)).not.toEqual(epoch0);
  });

  it('continues from a saved cursor exactly', () => {
    const straight = new DataOrder(7, new Prng(3)).take(23);
    const first = new DataOrder(7, new Prng(3));
    const head = first.take(9);
    const rest = new DataOrder(7, new Prng(3), JSON.parse(JSON.stringify(first.cursor))).take(14);
    expect([...head, ...rest]).toEqual(straight);
  });
});
