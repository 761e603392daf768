import { Args } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { inspectImage } from '../../src/index.js';
import { messageOf } from '../../src/util/errors.js';

export default class ImageInspect extends TspodCommand {
  static override description = 'display detailed information on one or more images (JSON)';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(ImageInspect);
    const out: unknown[] = [];
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        out.push(await inspectImage(ref, { roots: this.roots(flags) }));
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    if (failed) process.exitCode = 1;
  }
}
