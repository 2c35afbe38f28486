/** Connections to Temporal from the zod-validated settings (TLS files read here, never logged). */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { TemporalConfig } from '../config/connection';
import { dataConverter } from './codec';

function tlsOptions(t: TemporalConfig) {
  if (!t.tls.enabled && !t.tls.certFile) return undefined;
  return {
    serverNameOverride: t.tls.serverName,
    serverRootCACertificate: t.tls.caFile ? readFileSync(t.tls.caFile) : undefined,
    clientCertPair: t.tls.certFile ? { crt: readFileSync(t.tls.certFile), key: readFileSync(t.tls.keyFile!) } : undefined,
  };
}

export async function connectClient(t: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect({ address: t.address, tls: tlsOptions(t), connectTimeout: 5000 });
  return new Client({ connection, namespace: t.namespace, dataConverter: dataConverter(t) });
}

export async function connectWorker(t: TemporalConfig): Promise<NativeConnection> {
  // Loaded here: the worker SDK is heavy, and CLI commands that only talk to Temporal never need it.
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect({ address: t.address, tls: tlsOptions(t) });
}
