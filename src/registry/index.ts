export { RegistryClient, MANIFEST_SIZE_CAP, SMALL_BLOB_CAP } from './client.js';
export type { RegistryClientOptions, RegistryStats, ManifestResult } from './client.js';
export { noCredentials, parseChallenges, Authenticator } from './auth.js';
export type { CredentialSource, Credentials, Challenge } from './auth.js';
export { endpointsFor, isLoopbackHost, isInsecure, registryBaseUrl, splitHostPort } from './endpoints.js';
export type { Endpoint } from './endpoints.js';
export { DEFAULT_RETRY, parseRetryAfter, summarizeErrorBody } from './http.js';
export type { RetryPolicy } from './http.js';
