import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../model/backend';

describe('initBackend', () => {
  it('fails loudly, naming a forced backend that cannot load', async () => {
    await expect(initBackend('tfjs-node-gpu')).rejects.toThrow(/tfjs-node-gpu/);
    await expect(initBackend('tensorflow')).rejects.toThrow(/unknown backend "tensorflow"/);
  });

  it('loads wasm, reports name and version, and is idempotent', async () => {
    const info = await initBackend('wasm');
    expect(info).toEqual({ name: 'wasm', version: tf.version.tfjs });
    expect(tf.getBackend()).toBe('wasm');
    expect(await initBackend('wasm')).toEqual(info);
    await expect(initBackend('cpu')).rejects.toThrow(/already initialised as "wasm"/);
  });
});
