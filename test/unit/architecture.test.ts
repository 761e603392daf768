// The dependency directions of DESIGN.md §1, enforced on the source: a value import (not `import type`)
// from a module to a folder it may not depend on fails this test.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from '../support/registry.js';

const ROOT = repoRoot();

/** folder → the folders (and packages) it may import at run time, besides itself, src/util and node: built-ins other than those listed as forbidden. */
const RULES: Record<string, { may: string[]; packages?: string[]; forbidNode?: string[] }> = {
  commands: { may: ['src/cli', 'src/index.ts', 'src/util/errors.ts'], packages: ['@oclif/core'], forbidNode: ['node:fs', 'node:fs/promises'] },
  'src/cli': { may: ['src/state/paths.ts'], packages: ['@oclif/core'] },
  'src/image': { may: ['src/registry', 'store', 'src/unpack', 'src/reference', 'src/oci', 'src/config'] },
  'src/container': { may: ['src/runtime', 'src/mount', 'src/state', 'src/oci', 'src/sys', 'src/volume'] },
  'src/volume': { may: ['src/state', 'src/sys', 'src/oci'] },
  'src/registry': { may: ['src/reference', 'src/oci', 'src/config'], packages: ['undici', 'lru-cache'] },
  'src/reference': { may: ['src/oci'] },
  'src/config': { may: [] },
  'src/oci': { may: [] },
  store: { may: ['src/sys', 'src/oci'] },
  'src/unpack': { may: ['src/sys', 'src/oci'], packages: ['tar-stream'] },
  'src/runtime': { may: ['src/sys', 'src/oci'] },
  'src/mount': { may: ['src/sys', 'src/oci'] },
  'src/state': { may: ['src/sys', 'src/oci'] },
  'src/sys': { may: [], packages: ['koffi'] },
  'src/util': { may: ['src/oci'] },
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** Value imports only: `import type` and `export type` vanish at run time. */
function imports(source: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of source.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

function folderOf(rel: string): string | undefined {
  return Object.keys(RULES).sort((a, b) => b.length - a.length).find((f) => rel === f || rel.startsWith(f + '/'));
}

describe('dependency directions (DESIGN.md §1)', () => {
  for (const folder of Object.keys(RULES)) {
    it(`${folder} imports only what it may`, () => {
      const rule = RULES[folder]!;
      const bad: string[] = [];
      for (const file of files(join(ROOT, folder))) {
        const from = relative(ROOT, file);
        if (folderOf(from) !== folder) continue;
        for (const spec of imports(readFileSync(file, 'utf8'))) {
          if (spec.startsWith('node:')) {
            if (rule.forbidNode?.includes(spec)) bad.push(`${from} → ${spec}`);
            continue;
          }
          if (!spec.startsWith('.')) {
            if (!(rule.packages ?? []).some((p) => spec === p || spec.startsWith(p + '/'))) bad.push(`${from} → ${spec}`);
            continue;
          }
          const target = relative(ROOT, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
          const ok = folderOf(target) === folder || target.startsWith('src/util/') ||
            rule.may.some((m) => target === m || target.startsWith(m + '/'));
          if (!ok) bad.push(`${from} → ${target}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }
});
