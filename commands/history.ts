import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { history } from '../src/index.js';
import { humanAge, humanSize, shortId, table } from '../src/cli/format.js';

export default class History extends TspodCommand {
  static override description = 'show the history of an image';
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    'no-trunc': Flags.boolean({ description: 'do not truncate output' }),
    quiet: Flags.boolean({ char: 'q', description: 'only show image IDs' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(History);
    const rows = await history(args.image, { roots: this.roots(flags) });
    if (flags.json) {
      process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      return;
    }
    const id = (s: string) => (s.startsWith('sha256:') && !flags['no-trunc'] ? shortId(s) : s);
    if (flags.quiet) {
      process.stdout.write(rows.map((r) => id(r.id) + '\n').join(''));
      return;
    }
    const by = (s: string) => (flags['no-trunc'] || s.length <= 45 ? s : s.slice(0, 44) + '…');
    process.stdout.write(table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
      rows.map((r) => [id(r.id), humanAge(r.created), by(r.createdBy), humanSize(r.size), r.comment])));
  }
}
