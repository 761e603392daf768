import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { removeVolume } from '../../src/index.js';
import { messageOf } from '../../src/util/errors.js';

export default class VolumeRm extends TspodCommand {
  static override description = 'remove one or more volumes (refused while a container uses them)';
  static override aliases = ['volume:remove'];
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'volume name' }) };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'do not fail on a volume that does not exist' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(VolumeRm);
    let failed = false;
    for (const name of argv as string[]) {
      try {
        await removeVolume(name, { roots: this.roots(flags) });
        process.stdout.write(name + '\n');
      } catch (err) {
        if (flags.force && (err as { code?: string }).code === 'ENOTFOUND') continue;
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
