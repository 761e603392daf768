/** Layer unpacking: tar layer → directory in the overlay whiteout format. */
export { unpackLayer } from './unpack.js';
export type { UnpackOptions, UnpackResult } from './unpack.js';
export { TarReader, parsePax } from './tar-reader.js';
export type { TarEntry, TarEntryType, TarHandler } from './tar-reader.js';
export { cleanEntryPath } from './writer.js';
