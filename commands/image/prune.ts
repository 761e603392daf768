import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { confirm } from '../../src/cli/confirm.js';
import { humanSize } from '../../src/cli/format.js';
import { pruneImages } from '../../src/index.js';

export default class ImagePrune extends TspodCommand {
  static override description = 'remove unused image data (blobs, layers, partial downloads); with -a, every image no container uses';
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'remove all images not used by a container, not only unreferenced data' }),
    force: Flags.boolean({ char: 'f', description: 'do not prompt for confirmation' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ImagePrune);
    if (!flags.force) {
      const what = flags.all ? 'all images without at least one container associated to them' : 'all dangling images';
      if (!(await confirm(`WARNING! This will remove ${what}.`))) return;
    }
    const res = await pruneImages({ roots: this.roots(flags), all: flags.all });
    if (flags.json) {
      process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      return;
    }
    if (res.untagged.length || res.deleted.length) {
      process.stdout.write('Deleted Images:\n');
      for (const n of res.untagged) process.stdout.write(`untagged: ${n}\n`);
      for (const d of res.deleted) process.stdout.write(`deleted: ${d}\n`);
      process.stdout.write('\n');
    }
    process.stdout.write(`Total reclaimed space: ${humanSize(res.reclaimed)}\n`);
  }
}
