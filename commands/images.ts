import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { images } from '../src/index.js';
import { humanAge, humanSize, shortId, table } from '../src/cli/format.js';

export default class Images extends TspodCommand {
  static override description = 'list images';
  static override args = {
    repository: Args.string({ description: 'REPOSITORY[:TAG]: only the images of that repository (or tag)', required: false }),
  };
  static override flags = {
    quiet: Flags.boolean({ char: 'q', description: 'only show image IDs' }),
    'no-trunc': Flags.boolean({ description: 'do not truncate image IDs' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Images);
    const list = await images({ roots: this.roots(flags), reference: args.repository });
    if (flags.json) {
      process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    const id = (d: string) => (flags['no-trunc'] ? d : shortId(d));
    if (flags.quiet) {
      process.stdout.write([...new Set(list.map((i) => id(i.imageId)))].map((s) => s + '\n').join(''));
      return;
    }
    process.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
      list.map((i) => [i.repository, i.tag, id(i.imageId), humanAge(i.created), humanSize(i.size)])));
  }
}
