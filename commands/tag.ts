import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { tag } from '../src/index.js';

export default class Tag extends TspodCommand {
  static override description = 'create a tag TARGET_IMAGE that refers to SOURCE_IMAGE';
  static override args = {
    source: Args.string({ required: true, description: 'image reference or ID' }),
    target: Args.string({ required: true, description: 'new name[:tag]' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Tag);
    await tag(args.source, args.target, { roots: this.roots(flags) });
  }
}
