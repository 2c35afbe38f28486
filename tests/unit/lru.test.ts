import { describe, expect, it } from 'vitest';
import { Lru } from '../../util/lru';

describe('Lru', () => {
  it('evicts the least recently used entry beyond capacity and hands it to onEvict', () => {
    const evicted: string[] = [];
    const lru = new Lru<string>(2, (v) => evicted.push(v));
    lru.set('a', 'A');
    lru.set('b', 'B');
    expect(lru.get('a')).toBe('A'); // a is now the most recent
    lru.set('c', 'C');
    expect(evicted).toEqual(['B']);
    expect(lru.get('b')).toBeUndefined();
    expect([lru.get('a'), lru.get('c')]).toEqual(['A', 'C']);
  });
});
