import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { inspectImage } from '../../src/index.js';
import { printInspected } from '../../src/cli/template.js';

export default class ImageInspect extends TspodCommand {
  static override description = 'display detailed information on one or more images (JSON)';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each image: "{{.Id}}", "{{json .Config.Env}}"' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(ImageInspect);
    await printInspected(argv as string[], flags.format, (ref) => inspectImage(ref, { roots: this.roots(flags) }));
  }
}
