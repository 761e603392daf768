import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { save } from '../src/index.js';
import { fail } from '../src/util/errors.js';

export default class Save extends TspodCommand {
  static override description = 'save one or more images to a tar archive (docker-archive or oci-archive)';
  static override strict = false;
  static override examples = ['<%= config.bin %> save -o alpine.tar alpine:3.19', '<%= config.bin %> save --format oci-archive -o app.tar app:v1'];
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'write to a file instead of standard output' }),
    format: Flags.option({ options: ['docker-archive', 'oci-archive'] as const, default: 'docker-archive' as const, description: 'archive format' })(),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Save);
    if (flags.output === undefined && process.stdout.isTTY) {
      throw fail('EINVAL', 'save: refusing to write an archive to a terminal; use -o FILE or redirect standard output');
    }
    await save(argv as string[], { roots: this.roots(flags), format: flags.format, output: flags.output, stream: flags.output === undefined ? process.stdout : undefined });
  }
}
