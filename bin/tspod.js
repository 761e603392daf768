#!/usr/bin/env node
// Entry point. Keep it tiny: oclif loads only the command that runs (manifest-free lookup by file).
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
