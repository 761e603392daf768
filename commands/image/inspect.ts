import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { inspectImage } from '../../src/index.js';
import { messageOf } from '../../src/util/errors.js';
import { inspectOutput, parseTemplate } from '../../src/cli/template.js';

export default class ImageInspect extends TspodCommand {
  static override description = 'display detailed information on one or more images (JSON)';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each image: "{{.Id}}", "{{json .Config.Env}}"' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(ImageInspect);
    const template = flags.format !== undefined ? parseTemplate(flags.format) : undefined;
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
    process.stdout.write(inspectOutput(out, template));
    if (failed) process.exitCode = 1;
  }
}
