/**
 * TensorFlow.js backend selection. Tries the fastest backend that loads here:
 * tfjs-node-gpu -> tfjs-node -> wasm -> cpu. The native packages are optional dependencies that
 * are often absent (their install script needs internet), so each attempt is a guarded dynamic
 * import. T1_BACKEND (or the `force` argument) pins one and fails loudly if it cannot load.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { shimUtilForTfjsNode } from '../util/node-compat';
import { installNativeMatMul } from './native-matmul';
import { installWasmMatMul } from './wasm-matmul';

export const BACKENDS = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: BackendName;
  /** tfjs version; recorded in checkpoint manifests next to the backend name. */
  version: string;
}

const require = createRequire(import.meta.url);

async function load(name: BackendName): Promise<void> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      // A non-literal specifier keeps TypeScript and bundlers from resolving the optional package.
      const pkg: string = `@tensorflow/${name}`;
      process.env.TF_CPP_MIN_LOG_LEVEL ??= '2'; // TensorFlow's own info lines would flood every log
      shimUtilForTfjsNode();
      await import(pkg);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('backend "tensorflow" did not initialise');
      installNativeMatMul();
      return;
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // In Node the .wasm binaries are read from disk: point at the package's dist folder.
      const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(join(dist, '/'));
      if (!(await tf.setBackend('wasm'))) throw new Error('backend "wasm" did not initialise');
      installWasmMatMul();
      return;
    }
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error('backend "cpu" did not initialise');
  }
}

let chosen: Promise<BackendInfo> | undefined;

/**
 * Selects and initialises the backend once per process; later calls return the same result
 * (a later call forcing a different backend is an error, not a silent switch).
 */
export async function initBackend(force: string | undefined = process.env.T1_BACKEND || undefined): Promise<BackendInfo> {
  if (force !== undefined && !(BACKENDS as readonly string[]).includes(force)) {
    throw new Error(`unknown backend "${force}"; expected one of ${BACKENDS.join(', ')}`);
  }
  chosen ??= select(force as BackendName | undefined).catch((err) => {
    chosen = undefined; // a failed attempt (e.g. a forced backend that is absent) does not pin the process
    throw err;
  });
  return chosen.then((info) => {
    if (force !== undefined && info.name !== force) {
      throw new Error(`backend already initialised as "${info.name}", cannot switch to "${force}"`);
    }
    return info;
  });
}

async function select(force: BackendName | undefined): Promise<BackendInfo> {
  const candidates = force ? [force] : BACKENDS;
  const failures: string[] = [];
  for (const name of candidates) {
    try {
      await load(name);
      await tf.ready();
      const info = { name, version: tf.version.tfjs };
      const skipped = failures.length ? `; unavailable: ${failures.map((f) => f.split(':')[0]).join(', ')}` : '';
      process.stderr.write(`[t1] tfjs backend: ${name} (tfjs ${info.version}${skipped})\n`);
      return info;
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`could not load tfjs backend ${force ? `"${force}"` : 'any of ' + BACKENDS.join(', ')} (${failures.join('; ')})`);
}
