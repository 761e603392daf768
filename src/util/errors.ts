/**
 * The one error type the engine throws. `code` is stable (tests and the CLI match on it);
 * `message` is lowercase "verb object: cause", naming the path, digest, reference or container
 * at fault; `cause` keeps the underlying error.
 */
export type ErrorCode =
  | 'EINVAL'        // bad user input: a flag, a reference, a path
  | 'ENOTFOUND'     // an image, a container, a blob or a manifest that does not exist
  | 'EEXIST'        // a name already taken
  | 'EDIGEST'       // bytes that do not match their digest or size
  | 'EREGISTRY'     // the registry answered with an error
  | 'EAUTH'         // authentication refused
  | 'ERATELIMIT'    // the registry rate limited us past our budget
  | 'ENETWORK'      // connection errors after retries
  | 'EUNSUPPORTED'  // a format or feature we refuse (schema 1, unknown media type)
  | 'EUNSAFE'       // a hostile layer entry
  | 'ESYS'          // a system call failed
  | 'ELAUNCH'       // the container could not be started (before exec)
  | 'ENOEXEC'       // the command exists but cannot be executed (exit 126)
  | 'ENOCMD'        // the command was not found (exit 127)
  | 'ESTATE'        // a container in the wrong state for the operation
  | 'EBUSY'         // a lock held by someone else
  | 'EINTERNAL';

export class TspodError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TspodError';
  }
}

/** Shorthand used throughout: `throw fail('EINVAL', 'parse reference "x": ...')`. */
export function fail(code: ErrorCode, message: string, cause?: unknown): TspodError {
  return new TspodError(code, message, cause === undefined ? undefined : { cause });
}

/** The message of any thrown value, for "verb object: cause" chains. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Node system errors carry `code` (ENOENT, EACCES, …). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
