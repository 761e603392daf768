import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { importImage } from '../src/index.js';
import { openInput } from '../src/cli/io.js';

export default class Import extends TspodCommand {
  static override description = 'import the contents of a tarball to create a file system image';
  static override args = {
    file: Args.string({ required: true, description: 'tarball path, or - for standard input' }),
    ref: Args.string({ description: 'name[:tag] of the new image' }),
  };
  static override flags = {
    message: Flags.string({ char: 'm', description: 'commit message for the imported image' }),
    change: Flags.string({ char: 'c', multiple: true, multipleNonGreedy: true, description: 'apply a Dockerfile instruction to the image' }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the image ID' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Import);
    const input = await openInput(args.file === '-' ? undefined : args.file, 'import');
    const r = await importImage(input, { roots: this.roots(flags), ref: args.ref, message: flags.message, changes: flags.change });
    process.stdout.write(flags.quiet ? r.imageId + '\n' : `${r.name}\n${r.imageId}\n`);
  }
}
