import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { checkStore } from '../../src/index.js';

export default class SystemCheck extends TspodCommand {
  static override description = 'check the store: blobs against their digests, layers, refs and snapshots against their records';
  static override flags = {
    repair: Flags.boolean({ description: 'remove damaged blobs and layers (a later pull fetches them again), dangling refs and links' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SystemCheck);
    const res = await checkStore({ roots: this.roots(flags), repair: flags.repair });
    const left = res.problems.filter((p) => !p.repaired);
    if (left.length) process.exitCode = 1;
    if (flags.json) {
      process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      return;
    }
    const c = res.checked;
    process.stdout.write(`Checked ${c.blobs} blobs, ${c.layers} layers, ${c.refs} images, ${c.snapshots} container snapshots\n`);
    if (res.problems.length === 0) {
      process.stdout.write('No errors found\n');
      return;
    }
    for (const p of res.problems) {
      process.stdout.write(`${p.kind} ${p.name}: ${p.problem}${p.repaired ? ` (repaired: ${p.repaired})` : ''}\n`);
    }
    process.stdout.write(left.length ? `${left.length} errors found${flags.repair ? '' : '; run with --repair to fix them'}\n` : 'All errors repaired\n');
  }
}
