import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { copyFiles } from '../src/index.js';

export default class Cp extends TspodCommand {
  static override description = 'copy files between a container (running, created or stopped) and the host: CONTAINER:PATH HOSTPATH, or HOSTPATH CONTAINER:PATH; SRC/. copies the contents of a directory';
  static override args = {
    src: Args.string({ required: true, description: 'CONTAINER:PATH or host path' }),
    dest: Args.string({ required: true, description: 'host path or CONTAINER:PATH' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Cp);
    await copyFiles(this.roots(flags), args.src, args.dest);
  }
}
