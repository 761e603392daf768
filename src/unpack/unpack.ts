/**
 * unpackLayer: a compressed layer blob → a layer directory in the overlay whiteout format.
 *
 * One pass over the bytes: sniff the compression, gunzip, sha256 the uncompressed stream (the
 * diffID), parse the tar, write each entry straight to disk.
 *
 * File-system calls are synchronous on purpose. A layer is thousands of tiny operations (mkdir,
 * open, write, fchown, fchmod, futimes, close); the async API pays a thread-pool round trip and a
 * promise for each. To keep a parallel download flowing, the loop gives the event loop a turn
 * whenever it has worked for YIELD_MS, between two entries. The decompression itself runs on the
 * libuv pool, and so does the content of large files (LayerWriter's asyncContent: the bulk of a
 * layer's bytes, copied into the page cache by pool threads while this thread parses the next
 * entries; their owner, mode and times follow their last write, and the layer is only complete
 * once drain() has seen every one closed).
 */
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { MediaType, type Digest } from '../oci/types.js';
import { realSys, type Sys } from '../sys/index.js';
import { digestOf, newHash } from '../util/digest.js';
import { fail } from '../util/errors.js';
import { LayerWriter } from './writer.js';
import { TarReader } from './tar-reader.js';
import { zstdDecompress } from './zstd.js';

export interface UnpackOptions {
  sys?: Sys;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: Digest;
  /** Bytes of regular-file content written (hard links counted once). */
  size: number;
  /** Number of tar entries applied (whiteout markers included). */
  entries: number;
}

/** Longest stretch of synchronous file-system work before yielding to the event loop. */
const YIELD_MS = 8;
/** File content waiting for the pool above which parsing pauses (memory bound of asyncContent). */
const POOL_HIGH = 32 * 1024 * 1024;
/** Files open on the pool above which parsing pauses (keeps far below any RLIMIT_NOFILE). */
const POOL_FILES = 256;

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

type Compression = 'gzip' | 'zstd' | 'none';

/** What the media type claims; the magic bytes have the last word (some registries mislabel layers). */
function claimed(mediaType: string): Compression {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip')) return 'gzip';
  return 'none';
}

function sniff(head: Buffer): Compression | undefined {
  const starts = (m: number[]): boolean => head.length >= m.length && m.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  if (starts(ZSTD_MAGIC)) return 'zstd';
  return undefined;
}

/** Media types a layer may carry; others are refused (EUNSUPPORTED) rather than guessed at. */
const LAYER_TYPES = new Set<string>([
  MediaType.OciLayer,
  MediaType.OciLayerGzip,
  MediaType.OciLayerZstd,
  MediaType.OciLayerNondistributableGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  MediaType.DockerLayerGzip,
  MediaType.DockerLayerForeignGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/x-tar',
]);

/**
 * Unpacks one layer into `dir` (which must exist and should be empty) and returns its diffID.
 * Throws EUNSUPPORTED for a non-layer media type (or zstd without the zstd program), EUNSAFE for a hostile entry (nothing
 * outside `dir` is ever touched), EINVAL for a malformed archive. On failure `dir` holds a partial
 * layer: the caller (Store.ensureLayer) throws it away; no write is still in flight when this returns.
 * The input's chunks must not be changed after they are yielded (file content is written from them
 * later, on the pool): streams from files, sockets and zlib never do.
 */
export async function unpackLayer(input: Readable | AsyncIterable<Uint8Array>, mediaType: string, dir: string,
  opts: UnpackOptions = {}): Promise<UnpackResult> {
  if (!LAYER_TYPES.has(mediaType)) {
    throw fail('EUNSUPPORTED', `unpack layer: media type "${mediaType}" is not a layer type tspod can unpack`);
  }
  const it = (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const closeInput = async (): Promise<void> => {
    try { await it.return?.(); } catch { /* already failed */ }
  };

  // Read enough for the magic bytes.
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 4) {
    const r = await it.next();
    if (r.done) { ended = true; break; }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(b);
    headLen += b.length;
  }
  const compression = sniff(Buffer.concat(head)) ?? (claimed(mediaType) === 'zstd' ? 'zstd' : 'none');

  async function* compressed(): AsyncGenerator<Buffer> {
    try {
      for (const b of head) yield b;
      while (!ended) {
        const r = await it.next();
        if (r.done) break;
        yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      }
    } finally {
      await closeInput();
    }
  }

  const sys = opts.sys ?? realSys();
  // Large files' content is written on the libuv pool while this thread parses on (every chunk
  // below is a fresh buffer from gunzip, zstd or the input stream, never reused).
  const writer = new LayerWriter(dir, sys, { asyncContent: true });
  const reader = new TarReader(writer);
  const hash = newHash();

  // The writer's own error (EUNSAFE naming the entry, …) is what the caller must see: leaving the
  // for-await destroys the streams upstream, and pipeline() may report their AbortError first.
  let consumeError: unknown;
  const consume = async (src: AsyncIterable<Buffer>): Promise<void> => {
    try {
      await consumeAll(src);
    } catch (err) {
      consumeError ??= err;
      throw err;
    }
  };
  const consumeAll = async (src: AsyncIterable<Buffer>): Promise<void> => {
    let slice = performance.now();
    const overBudget = (): boolean => performance.now() - slice > YIELD_MS;
    for await (const chunk of src) {
      hash.update(chunk);
      // After the end-of-archive marker the rest (zero padding) still counts for the diffID.
      // Buffered chunks arrive through microtasks only, and one 256 KiB chunk can hold 500 headers
      // (symlinks, dirs) of a few syscalls each: without a pause, timers and sockets (a parallel
      // download) would starve. The reader stops between entries once YIELD_MS have passed.
      let off = 0;
      while (off < chunk.length && !reader.done) {
        off += reader.write(off === 0 ? chunk : chunk.subarray(off), overBudget);
        if (writer.pendingBytes > POOL_HIGH || writer.poolFileCount > POOL_FILES) {
          await writer.below(POOL_HIGH / 2, POOL_FILES / 2);
          slice = performance.now();
        } else if (performance.now() - slice > YIELD_MS) {
          await new Promise<void>((r) => setImmediate(r));
          slice = performance.now();
        }
      }
    }
    reader.end();
  };

  try {
    if (compression === 'gzip') {
      await pipeline(Readable.from(compressed(), { objectMode: false }), createGunzip({ chunkSize: 256 * 1024 }), consume);
    } else if (compression === 'zstd') {
      await consume(zstdDecompress(compressed()));
    } else {
      await consume(compressed());
    }
    await writer.drain();
    writer.finish();
  } catch (caught) {
    writer.abort();
    await writer.settle();
    const err = consumeError ?? caught;
    if (err instanceof Error && (err as { code?: string }).code?.startsWith('Z_')) {
      throw fail('EINVAL', `unpack layer: gunzip: ${err.message.toLowerCase()}`, err);
    }
    throw err;
  }
  return { diffId: digestOf(hash), size: writer.bytes, entries: writer.entries };
}
