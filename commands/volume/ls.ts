import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { listVolumes } from '../../src/index.js';
import { table } from '../../src/cli/format.js';

export default class VolumeLs extends TspodCommand {
  static override description = 'list volumes';
  static override aliases = ['volume:list'];
  static override flags = {
    quiet: Flags.boolean({ char: 'q', description: 'only show volume names' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(VolumeLs);
    const list = await listVolumes({ roots: this.roots(flags) });
    if (flags.json) return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
    if (flags.quiet) return void process.stdout.write(list.map((v) => v.name + '\n').join(''));
    process.stdout.write(table(['DRIVER', 'VOLUME NAME'], list.map((v) => [v.driver, v.name])));
  }
}
