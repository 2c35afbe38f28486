import { describe, expect, it } from 'vitest';
import { ephemeralHint } from '../../../infra/stack';

describe('port clash advice', () => {
  it('names the ephemeral range and a safe s3Port when the taken port lies in it, and says nothing otherwise', () => {
    const hint = ephemeralHint(38536, [32768, 60999]);
    expect(hint).toContain('ephemeral range 32768-60999');
    expect(hint).toContain('for stack.s3Port, below 22765');
    expect(ephemeralHint(28536, [32768, 60999])).toBe('');
    expect(ephemeralHint(38536, undefined)).toBe('');
  });
});
