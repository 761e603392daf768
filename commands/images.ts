import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { images } from '../src/index.js';
import { humanAge, humanSize, shortId, table } from '../src/cli/format.js';
import { parseTemplate, renderTemplate } from '../src/cli/template.js';

export default class Images extends TspodCommand {
  static override description = 'list images';
  static override args = {
    repository: Args.string({ description: 'REPOSITORY[:TAG]: only the images of that repository (or tag)', required: false }),
  };
  static override flags = {
    quiet: Flags.boolean({ char: 'q', description: 'only show image IDs' }),
    'no-trunc': Flags.boolean({ description: 'do not truncate image IDs' }),
    json: Flags.boolean({ description: 'print JSON' }),
    format: Flags.string({ description: '"json": one JSON object per line; or a Go template: "{{.Repository}}:{{.Tag}}", "table {{.ID}}\\t{{.Size}}"' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Images);
    const template = flags.format !== undefined && flags.format !== 'json' ? parseTemplate(flags.format) : undefined; // refused before any work
    const list = await images({ roots: this.roots(flags), reference: args.repository });
    if (flags.json) {
      process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    const id = (d: string) => (flags['no-trunc'] ? d : shortId(d));
    if (flags.format !== undefined && !flags.quiet) {
      // docker images' fields (its --format json and template names)
      const fields = (i: (typeof list)[number]) => ({ Repository: i.repository, Tag: i.tag, ID: id(i.imageId), Digest: i.manifestDigest,
        CreatedAt: i.created ?? '', CreatedSince: humanAge(i.created), Size: humanSize(i.size) });
      if (flags.format === 'json') {
        for (const i of list) process.stdout.write(JSON.stringify(fields(i)) + '\n');
      } else {
        process.stdout.write(renderTemplate(template!, list.map(fields), IMAGES_HEADERS));
      }
      return;
    }
    if (flags.quiet) {
      process.stdout.write([...new Set(list.map((i) => id(i.imageId)))].map((s) => s + '\n').join(''));
      return;
    }
    process.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
      list.map((i) => [i.repository, i.tag, id(i.imageId), humanAge(i.created), humanSize(i.size)])));
  }
}

/** docker images' column names for the template fields. */
const IMAGES_HEADERS: Record<string, string> = {
  Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', Digest: 'DIGEST', CreatedAt: 'CREATED AT', CreatedSince: 'CREATED', Size: 'SIZE',
};
