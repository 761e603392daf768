import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { createVolume } from '../../src/index.js';
import { fail } from '../../src/util/errors.js';

export default class VolumeCreate extends TspodCommand {
  static override description = 'create a named volume (a directory under the data root); prints its name';
  static override args = { name: Args.string({ required: false, description: 'volume name (random when omitted)' }) };
  static override flags = {
    label: Flags.string({ multiple: true, description: 'set metadata on the volume (KEY=VALUE)' }),
    driver: Flags.string({ char: 'd', default: 'local', description: 'volume driver (only local)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeCreate);
    if (flags.driver !== 'local') throw fail('EINVAL', `volume create: driver "${flags.driver}" is not supported (only local)`);
    const labels: Record<string, string> = {};
    for (const l of flags.label ?? []) {
      const eq = l.indexOf('=');
      labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
    }
    const v = await createVolume(args.name, { roots: this.roots(flags), labels });
    process.stdout.write(v.name + '\n');
  }
}
