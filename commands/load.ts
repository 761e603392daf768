import { Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { load } from '../src/index.js';
import { openInput } from '../src/cli/io.js';

export default class Load extends TspodCommand {
  static override description = 'load images from a tar archive (docker-archive or oci-archive, plain or gzipped)';
  static override flags = {
    input: Flags.string({ char: 'i', description: 'read from a file instead of standard input' }),
    quiet: Flags.boolean({ char: 'q', description: 'suppress the output' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Load);
    const r = await load(await openInput(flags.input, 'load'), { roots: this.roots(flags), what: `load ${flags.input ?? 'standard input'}` });
    if (!flags.quiet) for (const i of r.images) process.stdout.write(`Loaded image: ${i.familiarName}\n`);
  }
}
