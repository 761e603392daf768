import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { exportContainer } from '../src/index.js';
import { fail } from '../src/util/errors.js';

export default class Export extends TspodCommand {
  static override description = "export a container's file system as a tar archive";
  static override args = { container: Args.string({ required: true, description: 'container name or ID' }) };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'write to a file instead of standard output' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Export);
    if (flags.output === undefined && process.stdout.isTTY) {
      throw fail('EINVAL', 'export: refusing to write an archive to a terminal; use -o FILE or redirect standard output');
    }
    await exportContainer(args.container, { roots: this.roots(flags), output: flags.output, stream: flags.output === undefined ? process.stdout : undefined });
  }
}
