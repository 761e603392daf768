import { Args } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { inspectVolume } from '../../src/index.js';

export default class VolumeInspect extends TspodCommand {
  static override description = 'show volumes as JSON (docker volume inspect keys)';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'volume name' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(VolumeInspect);
    const out = [];
    for (const n of argv as string[]) {
      const v = await inspectVolume(n, { roots: this.roots(flags) });
      out.push({ CreatedAt: v.created, Driver: v.driver, Labels: v.labels, Mountpoint: v.mountpoint, Name: v.name, Options: {}, Scope: 'local', UsedBy: v.usedBy });
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  }
}
