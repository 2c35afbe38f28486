import { describe, expect, it } from 'vitest';
import { ConfigError, loadConnection, redacted } from '../../config/connection';

const creds = { T1_S3_ACCESS_KEY_ID: 'AKIDEXAMPLE', T1_S3_SECRET_ACCESS_KEY: 'very-secret-value' };
const load = (env: Record<string, string>) => loadConnection({}, { ...creds, T1_STATE_DIR: '/nonexistent-t1', ...env });
const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('connection config', () => {
  it('defaults point at the local stack', () => {
    const c = load({});
    expect(c.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', uiUrl: 'http://127.0.0.1:8233' });
    expect(c.s3).toMatchObject({ endpoint: 'http://127.0.0.1:8333', bucket: 't1-checkpoints', forcePathStyle: true });
    expect(load({ T1_TEMPORAL_PORT: '9999', T1_S3_PORT: '9000' }).temporal.address).toBe('127.0.0.1:9999');
    expect(load({ T1_S3_PORT: '9000' }).s3.endpoint).toBe('http://127.0.0.1:9000');
  });

  it.each([
    ['T1_TEMPORAL_PORT', 'abc', /stack\.temporalPort \[T1_TEMPORAL_PORT\]: .*expected number/],
    ['T1_S3_PORT', '70000', /stack\.s3Port \[T1_S3_PORT\]/],
    ['T1_TEMPORAL_ADDRESS', 'no-port', /temporal\.address \[T1_TEMPORAL_ADDRESS\]: expected host:port/],
    ['T1_TEMPORAL_NAMESPACE', 'bad ns!', /temporal\.namespace \[T1_TEMPORAL_NAMESPACE\]: expected a namespace name/],
    ['T1_TEMPORAL_TLS', 'maybe', /temporal\.tls\.enabled \[T1_TEMPORAL_TLS\]/],
    ['T1_S3_ENDPOINT', 'ftp://x', /s3\.endpoint \[T1_S3_ENDPOINT\]: expected an http\(s\) URL/],
    ['T1_S3_BUCKET', 'Bad_Bucket', /s3\.bucket \[T1_S3_BUCKET\]: expected an S3 bucket name/],
    ['T1_S3_FORCE_PATH_STYLE', 'sometimes', /s3\.forcePathStyle \[T1_S3_FORCE_PATH_STYLE\]/],
  ])('%s=%s names the field', (name, value, pattern) => {
    const e = errorOf(() => load({ [name]: value }));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(pattern);
  });

  it('TLS cert without key is refused', () => {
    expect(errorOf(() => load({ T1_TEMPORAL_TLS_CERT: '/c.pem' })).message).toMatch(
      /temporal\.tls: certFile and keyFile must be given together/,
    );
  });

  it('missing credentials say how to get them; secrets never appear in errors or printed config', () => {
    const e = errorOf(() => loadConnection({}, { T1_STATE_DIR: '/nonexistent-t1' }));
    expect(e.message).toMatch(/s3\.accessKeyId \[T1_S3_ACCESS_KEY_ID\]: missing: .*t1 stack up/);
    const bad = errorOf(() => loadConnection({}, { ...creds, T1_STATE_DIR: '/nonexistent-t1', T1_S3_BUCKET: 'X' }));
    expect(bad.message).not.toContain('very-secret-value');
    expect(JSON.stringify(redacted(load({})))).not.toContain('very-secret-value');
    expect(JSON.stringify(redacted(load({})))).not.toContain('AKIDEXAMPLE');
  });

  it('flags override environment variables', () => {
    expect(loadConnection({ 's3.bucket': 'from-flag' }, { ...creds, T1_STATE_DIR: '/x', T1_S3_BUCKET: 'from-env' }).s3.bucket).toBe(
      'from-flag',
    );
  });
});
