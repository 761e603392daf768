import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { familiarRef, removeImage } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Rmi extends TspodCommand {
  static override description = 'remove one or more images (and the layers and blobs nothing else uses)';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'remove the image even if a container uses it (its layers stay for the container)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Rmi);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        const res = await removeImage(ref, { roots: this.roots(flags), force: flags.force });
        for (const name of res.untagged) process.stdout.write(`Untagged: ${familiarRef(name)}\n`);
        for (const d of res.deleted) process.stdout.write(`Deleted: ${d}\n`);
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
