import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { removeImage } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Rmi extends TspodCommand {
  static override description = 'remove one or more images';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Rmi);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        for (const name of await removeImage(ref, { roots: this.roots(flags) })) process.stdout.write(`Untagged: ${name}\n`);
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
