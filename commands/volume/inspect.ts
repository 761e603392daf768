import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { dockerVolume, inspectVolume } from '../../src/index.js';
import { printInspected } from '../../src/cli/template.js';

export default class VolumeInspect extends TspodCommand {
  static override description = 'show volumes as JSON (docker volume inspect keys)';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'volume name' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each volume: "{{.Mountpoint}}", "{{json .Labels}}"' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(VolumeInspect);
    await printInspected(argv as string[], flags.format, async (n) => dockerVolume(await inspectVolume(n, { roots: this.roots(flags) })));
  }
}
